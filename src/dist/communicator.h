// Collectives over the ranks of a data-parallel job. Three backends behind one interface:
//   local  world size 1: every collective is the identity (no copies, no waits)
//   tcp    CPU tensors over the rendezvous connections, summed on rank 0 in rank order (deterministic); for CPU
//          training on several processes and for testing the data-parallel trainer without GPUs
//   nccl   CUDA tensors through NCCL on hsa's CUDA stream (dist/nccl_communicator.h); builds without NCCL lack it
// Tensors are contiguous f32 on device(); collectives run in the order every rank calls them, so every rank
// must make the same calls with the same sizes.
#pragma once
#include "dist/launch_env.h"

#include <hsa/tensor.h>

#include <chrono>
#include <memory>
#include <string>

namespace hsa::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;  // local, tcp or nccl
  virtual Device device() const = 0;

  // t := the element-wise sum of t over all ranks, in place.
  virtual void all_reduce_sum(Tensor& t) = 0;
  // out := rank()'s slice of the sum over ranks of `in`: in.numel() == world_size() * out.numel(), and rank r
  // receives elements [r * n, (r + 1) * n) of the sum.
  virtual void reduce_scatter_sum(const Tensor& in, Tensor& out) = 0;
  // out := every rank's `in`, concatenated in rank order: out.numel() == world_size() * in.numel().
  virtual void all_gather(const Tensor& in, Tensor& out) = 0;
  // Returns once every rank has called it.
  virtual void barrier() = 0;

  bool is_root() const { return rank() == 0; }
};

// The mean over ranks of a host value (a loss, a count): one all_reduce_sum of one element.
double all_reduce_mean(Communicator& comm, double value);

// World size 1 on `device`.
std::unique_ptr<Communicator> make_local_communicator(Device device);

// Which backend `hsa train --dist` asked for: auto picks local for world size 1, nccl for cuda, tcp for cpu.
// none refuses a world size > 1. nccl and tcp may run at world size 1 (testing the real path on one device).
// The rendezvous (rank 0 at env.master_addr:master_port) waits at most `timeout`.
std::unique_ptr<Communicator> make_communicator(const std::string& backend, const LaunchEnv& env, Device device,
                                                std::chrono::milliseconds timeout);

// Checks the argument of --dist (auto, none, tcp, nccl): throws hsa::InvalidArgument otherwise.
void check_backend_name(const std::string& backend);

}  // namespace hsa::dist

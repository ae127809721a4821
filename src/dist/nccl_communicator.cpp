#include "dist/nccl_communicator.h"

#include <hsa/error.h>

#if defined(HSA_WITH_NCCL)
#include "cuda/runtime.h"
#include "dist/rendezvous.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#endif

namespace hsa::dist {

#if defined(HSA_WITH_NCCL)
namespace {

void check_nccl(ncclResult_t status, const char* what, int rank) {
  if (status == ncclSuccess) return;
  fail("NCCL error in {} on rank {}: {} ({})", what, rank, ncclGetErrorString(status), ncclGetLastError(nullptr));
}

// The GPU this process drives: the local rank's, or device 0 when the launcher let it see one GPU only.
int bind_device(const LaunchEnv& env) {
  const int count = cuda::device_count();
  HSA_CHECK(count > 0, "dist: rank {} sees no CUDA device", env.rank);
  const int device = count == 1 ? 0 : env.local_rank;
  HSA_CHECK(device < count,
            "dist: rank {} has local rank {} but sees only {} CUDA devices (more processes on this node than GPUs?)",
            env.rank, env.local_rank, count);
  HSA_CUDA_CHECK(cudaSetDevice(device));
  return device;
}

void check_f32(const char* op, const char* name, const Tensor& t) {
  HSA_CHECK(t.defined() && t.dtype() == DType::f32 && t.is_contiguous() && t.device() == Device::cuda,
            "{}: {} must be a contiguous f32 tensor on cuda, got {}", op, name,
            t.defined() ? t.str() : std::string("an undefined tensor"));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const LaunchEnv& env, std::chrono::milliseconds timeout) : rank_(env.rank), world_(env.world_size) {
    bind_device(env);
    Rendezvous rendezvous(env, timeout);
    ncclUniqueId id{};
    if (env.rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", rank_);
    const std::string blob =
        rendezvous.broadcast(std::string(reinterpret_cast<const char*>(&id), sizeof id));
    HSA_CHECK(blob.size() == sizeof id, "dist: rank 0 sent an NCCL id of {} bytes, expected {}", blob.size(),
              sizeof id);
    std::memcpy(&id, blob.data(), sizeof id);
    check_nccl(ncclCommInitRank(&comm_, world_, id, rank_), "ncclCommInitRank", rank_);
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string backend() const override { return "nccl"; }
  Device device() const override { return Device::cuda; }

  void all_reduce_sum(Tensor& t) override {
    check_f32("all_reduce_sum", "t", t);
    check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), size_t(t.numel()), ncclFloat32, ncclSum, comm_,
                             cuda::stream()),
               "ncclAllReduce", rank_);
  }
  void reduce_scatter_sum(const Tensor& in, Tensor& out) override {
    check_f32("reduce_scatter_sum", "in", in);
    check_f32("reduce_scatter_sum", "out", out);
    HSA_CHECK(in.numel() == out.numel() * world_, "reduce_scatter_sum: in has {} elements, expected {} x {}",
              in.numel(), world_, out.numel());
    check_nccl(ncclReduceScatter(in.raw_data(), out.raw_data(), size_t(out.numel()), ncclFloat32, ncclSum, comm_,
                                 cuda::stream()),
               "ncclReduceScatter", rank_);
  }
  void all_gather(const Tensor& in, Tensor& out) override {
    check_f32("all_gather", "in", in);
    check_f32("all_gather", "out", out);
    HSA_CHECK(out.numel() == in.numel() * world_, "all_gather: out has {} elements, expected {} x {}", out.numel(),
              world_, in.numel());
    check_nccl(ncclAllGather(in.raw_data(), out.raw_data(), size_t(in.numel()), ncclFloat32, comm_, cuda::stream()),
               "ncclAllGather", rank_);
  }
  void barrier() override {
    Tensor one = Tensor::full({1}, 1.0, DType::f32).to(Device::cuda);
    all_reduce_sum(one);
    cuda::synchronize();
  }

 private:
  int rank_, world_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

bool nccl_available() { return true; }

std::unique_ptr<Communicator> make_nccl_communicator(const LaunchEnv& env, std::chrono::milliseconds timeout) {
  return std::make_unique<NcclCommunicator>(env, timeout);
}

#else

bool nccl_available() { return false; }

std::unique_ptr<Communicator> make_nccl_communicator(const LaunchEnv&, std::chrono::milliseconds) {
  fail_argument("--dist nccl: this build has no NCCL (configure with -DHSA_CUDA=ON where nccl.h and libnccl are "
                "installed)");
}

#endif

}  // namespace hsa::dist

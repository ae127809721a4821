#include "dist/communicator.h"

#include "dist/nccl_communicator.h"
#include "dist/rendezvous.h"

#include <hsa/error.h>

#include <vector>

namespace hsa::dist {
namespace {

void check_f32(const char* op, const char* name, const Tensor& t, Device device) {
  HSA_CHECK(t.defined() && t.dtype() == DType::f32 && t.is_contiguous() && t.device() == device,
            "{}: {} must be a contiguous f32 tensor on {}, got {}", op, name, device_name(device),
            t.defined() ? t.str() : std::string("an undefined tensor"));
}

void check_sizes(const char* op, const Tensor& whole, const Tensor& part, int world) {
  HSA_CHECK(whole.numel() == part.numel() * world, "{}: the full tensor has {} elements, expected {} x {} = {}", op,
            whole.numel(), world, part.numel(), part.numel() * world);
}

class LocalCommunicator final : public Communicator {
 public:
  explicit LocalCommunicator(Device device) : device_(device) {}
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string backend() const override { return "local"; }
  Device device() const override { return device_; }
  void all_reduce_sum(Tensor& t) override { check_f32("all_reduce_sum", "t", t, device_); }
  void reduce_scatter_sum(const Tensor& in, Tensor& out) override {
    check_f32("reduce_scatter_sum", "in", in, device_);
    check_f32("reduce_scatter_sum", "out", out, device_);
    check_sizes("reduce_scatter_sum", in, out, 1);
    if (in.raw_data() != out.raw_data()) out.copy_from(in.view(out.shape()));
  }
  void all_gather(const Tensor& in, Tensor& out) override {
    check_f32("all_gather", "in", in, device_);
    check_f32("all_gather", "out", out, device_);
    check_sizes("all_gather", out, in, 1);
    if (in.raw_data() != out.raw_data()) out.copy_from(in.view(out.shape()));
  }
  void barrier() override {}

 private:
  Device device_;
};

// Rank 0 receives every rank's tensor, sums them in rank order and sends the sum back: O(world size) traffic on
// rank 0, which is fine for the CPU training this is for. reduce-scatter and all-gather are built on it.
class TcpCommunicator final : public Communicator {
 public:
  TcpCommunicator(const LaunchEnv& env, std::chrono::milliseconds timeout) : rendezvous_(env, timeout) {}
  int rank() const override { return rendezvous_.rank(); }
  int world_size() const override { return rendezvous_.world_size(); }
  std::string backend() const override { return "tcp"; }
  Device device() const override { return Device::cpu; }

  void all_reduce_sum(Tensor& t) override {
    check_f32("all_reduce_sum", "t", t, Device::cpu);
    sum_in_place(t.data<float>(), static_cast<size_t>(t.numel()));
  }
  void reduce_scatter_sum(const Tensor& in, Tensor& out) override {
    check_f32("reduce_scatter_sum", "in", in, Device::cpu);
    check_f32("reduce_scatter_sum", "out", out, Device::cpu);
    check_sizes("reduce_scatter_sum", in, out, world_size());
    Tensor sum = in.clone();
    sum_in_place(sum.data<float>(), static_cast<size_t>(sum.numel()));
    out.copy_from(sum.view({-1}).slice(0, rank() * out.numel(), (rank() + 1) * out.numel()).view(out.shape()));
  }
  void all_gather(const Tensor& in, Tensor& out) override {
    check_f32("all_gather", "in", in, Device::cpu);
    check_f32("all_gather", "out", out, Device::cpu);
    check_sizes("all_gather", out, in, world_size());
    // Each rank's part in its slot, zeros elsewhere: the sum is the concatenation, exactly (x + 0 == x).
    out.zero();
    out.view({-1}).slice(0, rank() * in.numel(), (rank() + 1) * in.numel()).copy_from(in.contiguous().view({-1}));
    sum_in_place(out.data<float>(), static_cast<size_t>(out.numel()));
  }
  void barrier() override {
    float one = 1;
    sum_in_place(&one, 1);
  }

 private:
  // A collective may wait as long as another rank's step takes (rank 0 evaluates and saves while the others
  // wait): no time-out, but a rank that dies closes its connection, which fails the others at once.
  void sum_in_place(float* data, size_t n) {
    if (world_size() == 1) return;
    const size_t bytes = n * sizeof(float);
    const std::chrono::milliseconds forever(0);
    if (rank() == 0) {
      std::vector<float> part(n);
      for (int r = 1; r < world_size(); ++r) {
        rendezvous_.to_rank(r).recv_all(part.data(), bytes, rendezvous_.peer_name(r), forever);
        for (size_t i = 0; i < n; ++i) data[i] += part[i];
      }
      for (int r = 1; r < world_size(); ++r) rendezvous_.to_rank(r).send_all(data, bytes, rendezvous_.peer_name(r));
    } else {
      rendezvous_.to_root().send_all(data, bytes, rendezvous_.peer_name(0));
      rendezvous_.to_root().recv_all(data, bytes, rendezvous_.peer_name(0), forever);
    }
  }

  Rendezvous rendezvous_;
};

}  // namespace

double all_reduce_mean(Communicator& comm, double value) {
  if (comm.world_size() == 1) return value;
  Tensor t = Tensor::full({1}, value, DType::f32).to(comm.device());
  comm.all_reduce_sum(t);
  return t.to(Device::cpu).item() / double(comm.world_size());
}

std::unique_ptr<Communicator> make_local_communicator(Device device) {
  return std::make_unique<LocalCommunicator>(device);
}

void check_backend_name(const std::string& backend) {
  if (backend != "auto" && backend != "none" && backend != "tcp" && backend != "nccl")
    fail_argument("--dist must be auto, none, tcp or nccl, got '{}'", backend);
}

std::unique_ptr<Communicator> make_communicator(const std::string& backend, const LaunchEnv& env, Device device,
                                                std::chrono::milliseconds timeout) {
  check_backend_name(backend);
  std::string chosen = backend;
  if (backend == "auto") chosen = env.world_size == 1 ? "none" : device == Device::cuda ? "nccl" : "tcp";
  if (chosen == "none") {
    if (env.world_size > 1)
      fail_argument("--dist none, but the {} launcher started {} processes (this is rank {})", env.launcher,
                    env.world_size, env.rank);
    return make_local_communicator(device);
  }
  if (chosen == "tcp") {
    if (device != Device::cpu)
      fail_argument("--dist tcp moves cpu tensors; --device {} trains with --dist nccl", device_name(device));
    return std::make_unique<TcpCommunicator>(env, timeout);
  }
  if (device != Device::cuda) fail_argument("--dist nccl needs --device cuda");
  return make_nccl_communicator(env, timeout);
}

}  // namespace hsa::dist

// The NCCL backend at world size 1 on one GPU (the real path: NCCL initialised through the rendezvous, collectives
// on hsa's stream): each collective is the identity, the gradient sync gives back the same gradients in f32,
// and `hsa train --dist nccl` (also with --zero1, the sharded optimizer) follows the loss curve of the same run
// without a backend. Several GPUs:
// tests/multigpu.
#include "gpu/parity.h"
#include "common/temp_dir.h"
#include "dist/communicator.h"
#include "dist/grad_sync.h"
#include "dist/nccl_communicator.h"
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

using namespace hsa;
using namespace hsa::testing;

namespace {

// NVLink multicast stays off in NCCL (on shared machines a program using it can take the host's GPUs out of
// service); one GPU never uses it, but the setting must hold wherever NCCL starts.
void nvlink_multicast_off() { ::setenv("NCCL_NVLS_ENABLE", "0", 1); }

std::unique_ptr<dist::Communicator> nccl_world_of_one() {
  nvlink_multicast_off();
  dist::LaunchEnv env;  // world size 1: the rendezvous connects nothing, NCCL still makes a communicator
  return dist::make_communicator("nccl", env, Device::cuda, std::chrono::milliseconds(30000));
}

Tensor on_gpu(std::vector<double> values, const Shape& shape) {
  return Tensor::from_values(values, shape).to(Device::cuda);
}

}  // namespace

TEST(Nccl, WorldOfOneCollectivesAreTheIdentity) {
  HSA_REQUIRE_GPU();
  if (!dist::nccl_available()) GTEST_SKIP() << "built without NCCL";
  auto comm = nccl_world_of_one();
  EXPECT_EQ(comm->backend(), "nccl");
  EXPECT_EQ(comm->world_size(), 1);
  Tensor t = on_gpu({1.5, -2, 3.25, 4}, {2, 2});
  comm->all_reduce_sum(t);
  EXPECT_EQ(t.to(Device::cpu).to_vector(), (std::vector<double>{1.5, -2, 3.25, 4}));
  Tensor out = Tensor::zeros({4}, DType::f32, Device::cuda);
  comm->reduce_scatter_sum(t.view({-1}), out);
  EXPECT_EQ(out.to(Device::cpu).to_vector(), (std::vector<double>{1.5, -2, 3.25, 4}));
  Tensor gathered = Tensor::zeros({1, 4}, DType::f32, Device::cuda);
  comm->all_gather(out, gathered);
  EXPECT_EQ(gathered.to(Device::cpu).to_vector(), (std::vector<double>{1.5, -2, 3.25, 4}));
  EXPECT_DOUBLE_EQ(dist::all_reduce_mean(*comm, 0.75), 0.75);
  comm->barrier();
  Tensor bf16 = t.to(DType::bf16);
  EXPECT_THROW(comm->all_reduce_sum(bf16), Error);
}

TEST(Nccl, GradientSyncKeepsBf16GradientsAsF32AcrossBuckets) {
  HSA_REQUIRE_GPU();
  if (!dist::nccl_available()) GTEST_SKIP() << "built without NCCL";
  auto comm = nccl_world_of_one();
  TensorMap grads;
  grads["a"] = on_gpu({1, 2, 3, 4, 5, 6}, {2, 3}).to(DType::bf16);
  grads["b"] = on_gpu({-0.5, 0.25}, {2});
  grads["c"] = on_gpu({7, 8, 9}, {3, 1});
  const TensorMap before = convert(grads, Device::cpu, DType::f32);
  dist::average_gradients(*comm, grads, /*bucket_bytes=*/12);  // a bucket closes after "a", another after "c"
  for (const auto& [name, g] : grads) {
    EXPECT_EQ(g.dtype(), DType::f32) << name;
    EXPECT_EQ(g.shape(), before.at(name).shape()) << name;
    EXPECT_EQ(g.to(Device::cpu).to_vector(), before.at(name).to_vector()) << name;
  }
}

TEST(Nccl, TrainingThroughNcclFollowsTheRunWithoutABackend) {
  HSA_REQUIRE_GPU();
  if (!dist::nccl_available()) GTEST_SKIP() << "built without NCCL";
  nvlink_multicast_off();
  TempDir tmp;
  auto run = [&](const std::string& backend, bool zero1 = false) {
    TrainOptions o;
    o.config_path = std::string(HSA_SOURCE_DIR) + "/configs/tiny.json";
    o.out_dir = tmp.file((backend + (zero1 ? "-zero1" : "")).c_str());
    o.zero1 = zero1;
    o.tasks = {"passkey"};
    o.batch = 4;
    o.seq_len = 256;
    o.steps = 10;
    o.schedule.lr = 3e-3;
    o.schedule.warmup_steps = 2;
    o.eval_every = 0;
    o.save_every = 0;
    o.quiet = true;
    o.device = "cuda";
    o.dist = backend;
    return train(o).losses;
  };
  const std::vector<double> plain = run("none"), nccl = run("nccl"), zero1 = run("nccl", true);
  ASSERT_EQ(plain.size(), nccl.size());
  ASSERT_EQ(plain.size(), zero1.size());
  // The same computation (bf16 gradients converted to f32 exactly, divided by 1): only the GPU's own
  // run-to-run differences (atomics) separate the curves.
  double worst = 0;
  double worst_zero1 = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    worst = std::max(worst, std::abs(nccl[i] - plain[i]) / plain[i]);
    worst_zero1 = std::max(worst_zero1, std::abs(zero1[i] - plain[i]) / plain[i]);
  }
  std::printf("over %zu steps, worst relative loss gap to no backend: nccl %.3g, nccl + zero1 %.3g\n", plain.size(),
              worst, worst_zero1);
  EXPECT_LT(worst, 1e-2);
  EXPECT_LT(worst_zero1, 1e-2);
  EXPECT_NEAR(nccl[0], plain[0], 1e-3 * plain[0]);
  EXPECT_NEAR(zero1[0], plain[0], 1e-3 * plain[0]);
}

// Data parallelism on several GPUs of one host (ctest label multigpu; skipped with fewer than 2 GPUs):
//   - NCCL collectives across every GPU (up to 8), one process each: this test binary starts copies of itself
//     as the ranks (MultiGpuWorker.*, which skip unless HSA_MULTIGPU_WORKER is set);
//   - `hsa train` on 2 GPUs x batch b follows 1 GPU x batch 2b within bf16 tolerance, and rank 0 alone logs;
//     with --zero1 (sharded optimizer state) it follows the plain 2-GPU run.
// The throughput of each is printed for the record (docs/results.md).
#include "common/launch_ranks.h"
#include "common/temp_dir.h"
#include "cuda/runtime.h"
#include "dist/communicator.h"
#include "dist/grad_sync.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>

using namespace hsa;
using namespace hsa::testing;

namespace {

bool is_worker() { return std::getenv("HSA_MULTIGPU_WORKER") != nullptr; }

// Every process these tests start runs with NVLink multicast off in NCCL: on shared machines a program using it
// can take the host's GPUs out of service.
const std::string kNcclEnv = "NCCL_NVLS_ENABLE=0";

// The `hsa` command: HSA_CLI when set (a build carried to another machine), else the one built beside this test.
std::string hsa_cli() {
  const char* env = std::getenv("HSA_CLI");
  return env && *env ? env : HSA_CLI_PATH;
}

#define HSA_REQUIRE_GPUS(n)                                                                                  \
  do {                                                                                                       \
    if (is_worker()) GTEST_SKIP() << "a worker runs only MultiGpuWorker.*";                                 \
    if (::hsa::cuda::device_count() < (n)) GTEST_SKIP() << "needs " << (n) << " CUDA devices";             \
  } while (0)

// Each rank's values: rank r holds r + 1 times `base`.
std::vector<double> rank_values(int rank, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = double(rank + 1) * (0.5 + double(i % 7));
  return v;
}

struct LogLine {
  double loss = 0, tokens_per_s = 0;
};

std::vector<LogLine> read_log(const std::string& run) {
  std::vector<LogLine> lines;
  std::ifstream in(run + "/train_log.jsonl");
  std::string text;
  while (std::getline(in, text)) {
    if (text.empty()) continue;
    auto j = nlohmann::json::parse(text);
    lines.push_back({j.at("loss").get<double>(), j.at("tokens_per_s").get<double>()});
  }
  return lines;
}

}  // namespace

// One rank of CollectivesAcrossEveryGpu.
TEST(MultiGpuWorker, Collectives) {
  if (!is_worker()) GTEST_SKIP() << "started by MultiGpu.CollectivesAcrossEveryGpu";
  const dist::LaunchEnv env = dist::launch_env_from_process();
  auto comm = dist::make_communicator("nccl", env, Device::cuda, std::chrono::milliseconds(60000));
  const int W = comm->world_size(), r = comm->rank();
  ASSERT_EQ(W, env.world_size);
  const int64_t n = 6 * W;
  // all_reduce_sum: sum over ranks of (q + 1) * base = base * W (W + 1) / 2.
  Tensor t = Tensor::from_values(rank_values(r, n), {n}).to(Device::cuda);
  Tensor in = t.clone();
  comm->all_reduce_sum(t);
  std::vector<double> got = t.to(Device::cpu).to_vector(), base = rank_values(0, n);
  for (int64_t i = 0; i < n; ++i) EXPECT_DOUBLE_EQ(got[size_t(i)], base[size_t(i)] * W * (W + 1) / 2) << i;
  // reduce_scatter_sum: rank r's slice of that sum.
  Tensor part = Tensor::zeros({6}, DType::f32, Device::cuda);
  comm->reduce_scatter_sum(in, part);
  got = part.to(Device::cpu).to_vector();
  for (int64_t i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(got[size_t(i)], base[size_t(r * 6 + i)] * W * (W + 1) / 2) << i;
  // all_gather: every rank's first 3 values, in rank order.
  Tensor mine = in.slice(0, 0, 3).contiguous();
  Tensor all = Tensor::zeros({W, 3}, DType::f32, Device::cuda);
  comm->all_gather(mine, all);
  got = all.to(Device::cpu).to_vector();
  for (int q = 0; q < W; ++q)
    for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(got[size_t(q * 3 + i)], rank_values(q, 3)[size_t(i)]) << q << " " << i;
  EXPECT_DOUBLE_EQ(dist::all_reduce_mean(*comm, double(r)), double(W - 1) / 2);
  // The gradient sync: bf16 gradients, buckets of 64 bytes, the mean over ranks in f32.
  TensorMap grads;
  grads["a"] = Tensor::from_values(rank_values(r, 40), {4, 10}).to(Device::cuda).to(DType::bf16);
  grads["b"] = Tensor::from_values(rank_values(r, 5), {5}).to(Device::cuda);
  dist::average_gradients(*comm, grads, 64);
  for (const auto& [name, g] : grads) {
    std::vector<double> v = g.to(Device::cpu).to_vector(), b0 = rank_values(0, g.numel());
    for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], b0[i] * (W + 1) / 2.0, 1e-5) << name << " " << i;
  }
  comm->barrier();
}

TEST(MultiGpu, CollectivesAcrossEveryGpu) {
  HSA_REQUIRE_GPUS(2);
  TempDir tmp;
  const int world = std::min(cuda::device_count(), 8);
  RankRuns runs = launch_ranks(tmp.path, world, "'/proc/" + std::to_string(::getpid()) + "/exe' "
                               "--gtest_filter=MultiGpuWorker.Collectives", kNcclEnv + " HSA_MULTIGPU_WORKER=1");
  ASSERT_EQ(runs.codes.size(), size_t(world));
  for (int r = 0; r < world; ++r) EXPECT_EQ(runs.codes[size_t(r)], 0) << "rank " << r << ":\n" << runs.outputs[size_t(r)];
}

TEST(MultiGpu, TwoGpusTrainLikeOneWithTwiceTheBatch) {
  HSA_REQUIRE_GPUS(2);
  TempDir tmp;
  auto args = [&](const std::string& out, int batch, const std::string& dist) {
    return "'" + hsa_cli() + "' train -c '" HSA_SOURCE_DIR "/configs/tiny.json' -o '" + tmp.file(out.c_str()) +
           "' --task passkey --phrasings legacy --answer-weight 1 -b " + std::to_string(batch) +
           " -L 256 -s 30 --lr 3e-3 --warmup 5 --eval-every 0 --save-every 0 --seed 3 -q --device cuda --dist " +
           dist;
  };
  RankRuns one = launch_ranks(tmp.path, 1, args("one", 8, "none"), kNcclEnv);
  ASSERT_EQ(one.codes, std::vector<int>{0}) << one.outputs.at(0);
  RankRuns two = launch_ranks(tmp.path, 2, args("two", 4, "nccl"), kNcclEnv);
  ASSERT_EQ(two.codes.size(), 2u);
  for (int r = 0; r < 2; ++r) ASSERT_EQ(two.codes[size_t(r)], 0) << "rank " << r << ":\n" << two.outputs[size_t(r)];

  RankRuns zero1 = launch_ranks(tmp.path, 2, args("zero1", 4, "nccl --zero1"), kNcclEnv);
  ASSERT_EQ(zero1.codes.size(), 2u);
  for (int r = 0; r < 2; ++r) ASSERT_EQ(zero1.codes[size_t(r)], 0) << "rank " << r << ":\n" << zero1.outputs[size_t(r)];

  const std::vector<LogLine> a = read_log(tmp.file("one")), b = read_log(tmp.file("two")),
                             z = read_log(tmp.file("zero1"));
  ASSERT_EQ(z.size(), 30u);
  // ZeRO-1 makes plain data parallelism's update (to rounding), so its curve stays on the 2-GPU one.
  double worst_zero1 = 0;
  for (size_t i = 0; i < 30; ++i) worst_zero1 = std::max(worst_zero1, std::abs(z[i].loss - b[i].loss) / b[i].loss);
  std::printf("2 GPUs with --zero1 vs without: worst relative loss gap %.3g; tokens/s %.0f\n", worst_zero1,
              z.back().tokens_per_s);
  EXPECT_NEAR(z[0].loss, b[0].loss, 1e-2 * b[0].loss);
  ASSERT_EQ(a.size(), 30u);
  ASSERT_EQ(b.size(), 30u);  // rank 0 alone logged
  // bf16 compute, MoE routing and the tiny config's aux loss per process: the first step agrees closely, the
  // curves stay together (the criterion of TrainParity).
  EXPECT_NEAR(b[0].loss, a[0].loss, 1e-2 * a[0].loss);
  double tail_a = 0, tail_b = 0, worst = 0;
  for (size_t i = 0; i < 30; ++i) worst = std::max(worst, std::abs(b[i].loss - a[i].loss) / a[i].loss);
  for (size_t i = 25; i < 30; ++i) tail_a += a[i].loss / 5, tail_b += b[i].loss / 5;
  std::printf("2 GPUs x batch 4 vs 1 GPU x batch 8 over 30 steps: worst relative loss gap %.3g, last-5 mean %.4f vs "
              "%.4f; tokens/s %.0f (1 GPU) and %.0f (2 GPUs, global)\n",
              worst, tail_b, tail_a, a.back().tokens_per_s, b.back().tokens_per_s);
  EXPECT_NEAR(tail_b, tail_a, 5e-2 * tail_a);
}

// `hsa train --device cuda` against the CPU: the first 50 steps of the tiny config stay on the CPU's loss curve
// within bf16 tolerance (the criterion), in f32 and in bf16; in f32 the first 10 steps also agree to
// rounding. The measured gaps are printed for the record.
//
// Why f32 is not held to rounding over all 50 steps: training with top-k MoE routing amplifies any difference in
// summation order. Two CPU runs that differ only in the BLAS thread count (1 vs 2) agree within 6.4e-8 over the
// first 10 steps, 1.7e-4 over 20, and then drift apart, 2.2e-3 at step 30; the GPU sums in other orders still (cuBLASLt, atomics in the
// embedding backward), and an H200 run measured 8.6e-4 once and 1.8e-2 another time, both with every gradient of
// the model within 1e-5 of the CPU (ModelParity). Rounding agreement per step is ModelParity's job.
#include "gpu/parity.h"
#include "common/temp_dir.h"
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <cstdio>

using namespace hsa;
using namespace hsa::testing;

namespace {

std::vector<double> losses_on(const std::string& device, const std::string& dtype, const std::string& dir) {
  TrainOptions o;
  o.config_path = std::string(HSA_SOURCE_DIR) + "/configs/tiny.json";
  o.out_dir = dir;
  o.tasks = {"passkey"};
  o.batch = 4;
  o.seq_len = 256;
  o.steps = 50;
  o.schedule.lr = 3e-3;
  o.schedule.warmup_steps = 10;
  o.eval_every = 0;
  o.save_every = 0;
  o.quiet = true;
  o.device = device;
  o.dtype = dtype;
  return train(o).losses;
}

// The largest |gpu - cpu| / cpu over the first n steps (all when n = 0).
double worst_relative_gap(const std::vector<double>& got, const std::vector<double>& want, size_t n = 0) {
  double worst = 0;
  for (size_t i = 0; i < (n ? n : want.size()); ++i) worst = std::max(worst, std::abs(got[i] - want[i]) / std::abs(want[i]));
  return worst;
}

// |mean(got) - mean(want)| / mean(want) over the last n steps: where the curves end up, without one noisy step.
double tail_mean_gap(const std::vector<double>& got, const std::vector<double>& want, size_t n) {
  double g = 0, w = 0;
  for (size_t i = want.size() - n; i < want.size(); ++i) g += got[i], w += want[i];
  return std::abs(g - w) / std::abs(w);
}

}  // namespace

TEST(TrainParity, FiftyStepsOfTheTinyConfigFollowTheCpuLossCurve) {
  HSA_REQUIRE_GPU();
  TempDir tmp;
  std::vector<double> cpu = losses_on("cpu", "f32", tmp.file("cpu"));
  std::vector<double> f32 = losses_on("cuda", "f32", tmp.file("cuda_f32"));
  std::vector<double> bf16 = losses_on("cuda", "bf16", tmp.file("cuda_bf16"));
  ASSERT_EQ(cpu.size(), 50u);
  ASSERT_EQ(f32.size(), 50u);
  ASSERT_EQ(bf16.size(), 50u);
  double gap_f32 = worst_relative_gap(f32, cpu), gap_bf16 = worst_relative_gap(bf16, cpu);
  double early_f32 = worst_relative_gap(f32, cpu, 10);
  double tail_f32 = tail_mean_gap(f32, cpu, 10), tail_bf16 = tail_mean_gap(bf16, cpu, 10);
  std::printf("loss step 1 / 50: cpu %.4f / %.4f, cuda f32 %.4f / %.4f, cuda bf16 %.4f / %.4f\n", cpu[0], cpu[49],
              f32[0], f32[49], bf16[0], bf16[49]);
  std::printf("worst relative gap over 50 steps: f32 %.2e (first 10 steps %.2e), bf16 %.2e; gap of the last-10-step "
              "means: f32 %.2e, bf16 %.2e\n",
              gap_f32, early_f32, gap_bf16, tail_f32, tail_bf16);
  std::printf("relative gap by step (f32 / bf16):");
  for (size_t i : {0, 4, 9, 19, 29, 39, 49})
    std::printf(" %zu: %.1e / %.1e", i + 1, std::abs(f32[i] - cpu[i]) / cpu[i], std::abs(bf16[i] - cpu[i]) / cpu[i]);
  std::printf("\n");
  // bf16 drifts step by step (worst single step measured 5.7e-2 on an H200, step 50 within 1%): it, and f32 with
  // it, must stay on the curve.
  EXPECT_LT(early_f32, 1e-3);
  EXPECT_LT(gap_f32, 0.1);
  EXPECT_LT(tail_f32, 0.03);
  EXPECT_LT(gap_bf16, 0.1);
  EXPECT_LT(tail_bf16, 0.03);
  EXPECT_LT(cpu[49], cpu[0]);  // and it is learning, not flat
}

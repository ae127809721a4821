// `hsa train --device cuda` against the CPU: the first 50 steps of the tiny config give the CPU's loss curve,
// to f32 rounding in f32 and within bf16 tolerance in bf16. The measured gaps are printed for the record.
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

// The largest |gpu - cpu| / cpu over the steps.
double worst_relative_gap(const std::vector<double>& got, const std::vector<double>& want) {
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]) / std::abs(want[i]));
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
  double tail_bf16 = tail_mean_gap(bf16, cpu, 10);
  std::printf("loss step 1 / 50: cpu %.4f / %.4f, cuda f32 %.4f / %.4f, cuda bf16 %.4f / %.4f\n", cpu[0], cpu[49],
              f32[0], f32[49], bf16[0], bf16[49]);
  std::printf("worst relative gap over 50 steps: f32 %.2e, bf16 %.2e; bf16 gap of the last-10-step means %.2e\n",
              gap_f32, gap_bf16, tail_bf16);
  // f32 follows the CPU to rounding (measured on an H200: 8.6e-4 at worst). bf16 is a different computation that
  // drifts step by step (worst single step measured 5.7e-2, step 50 within 1%): it must stay on the curve.
  EXPECT_LT(gap_f32, 1e-3);
  EXPECT_LT(gap_bf16, 0.1);
  EXPECT_LT(tail_bf16, 0.03);
  EXPECT_LT(cpu[49], cpu[0]);  // and it is learning, not flat
}

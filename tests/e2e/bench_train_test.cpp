// `hsa bench train` on the CPU: whole training steps run and are reported with their model FLOPs.
#include "bench/train_bench.h"

#include <hsa/error.h>

#include <gtest/gtest.h>

using namespace hsa;

TEST(BenchTrain, TimesStepsAndCountsModelFlopsOnTheCpu) {
  bench::TrainBenchOptions o;
  o.config_path = std::string(HSA_SOURCE_DIR) + "/configs/micro.json";
  o.seq_len = 96;
  o.batch = 2;
  o.warmup_steps = 1;
  o.steps = 3;
  bench::TrainBenchResult r = bench::run_train_bench(o);
  ASSERT_EQ(r.step_ms.size(), 3u);
  for (double ms : r.step_ms) EXPECT_GT(ms, 0.0);
  EXPECT_EQ(r.device, "cpu");
  EXPECT_NEAR(r.tokens_per_s, 192.0 / (r.median_ms * 1e-3), 1e-6 * r.tokens_per_s);
  EXPECT_NEAR(r.model_tflops, r.flops.per_token() * r.tokens_per_s / 1e12, 1e-12);
  EXPECT_FALSE(r.mfu.has_value());  // no peak for a cpu
  nlohmann::json j = bench::train_bench_json(o, r, "abc1234", "hsa bench train ...");
  EXPECT_EQ(j["commit"], "abc1234");
  EXPECT_EQ(j["step_ms"].size(), 3u);
  EXPECT_TRUE(j["mfu"].is_null());
  EXPECT_GT(j["flops_per_token"]["total"].get<double>(), 0.0);
  o.steps = 0;
  EXPECT_THROW(bench::run_train_bench(o), Error);
}

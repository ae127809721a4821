// `hsa bench train`: the time of a whole training step (forward, loss, backward, clipping, AdamW, bf16 refresh)
// of a model config on one device, and its model FLOP utilisation: model FLOPs (model/flops.h) per second
// against the device's dense bf16 peak (roofline.h). The batches are generated before the timing starts.
#pragma once
#include "model/flops.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace hsa::bench {

struct TrainBenchOptions {
  std::string config_path;
  int64_t seq_len = 4096;
  int64_t batch = 1;
  int warmup_steps = 2;
  int steps = 10;
  std::string device = "cpu", dtype;
};

struct TrainBenchResult {
  std::string device;  // description
  std::string dtype;
  int64_t parameters = 0, active_parameters = 0;
  TrainingFlops flops;            // per token
  std::vector<double> step_ms;    // the timed steps
  double median_ms = 0;
  double tokens_per_s = 0;
  double model_tflops = 0;        // model FLOPs / s / 1e12
  std::optional<double> peak_tflops;
  std::optional<double> mfu;      // model_tflops / peak
};

TrainBenchResult run_train_bench(const TrainBenchOptions& options);

nlohmann::json train_bench_json(const TrainBenchOptions& options, const TrainBenchResult& result,
                                const std::string& commit, const std::string& command);

}  // namespace hsa::bench

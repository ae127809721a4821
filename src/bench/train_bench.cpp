#include "bench/train_bench.h"

#include "bench/roofline.h"
#include "model/placement.h"
#include "model/param_spec.h"
#include "tensor/device_memory.h"
#include "text/filler.h"
#include "text/tasks.h"
#include "train/train_step.h"

#include <algorithm>
#include <chrono>

namespace hsa::bench {

TrainBenchResult run_train_bench(const TrainBenchOptions& o) {
  HSA_CHECK(o.seq_len > 0 && o.batch > 0 && o.steps > 0 && o.warmup_steps >= 0,
            "bench train: --seq-len, --batch and --steps must be positive, --warmup non-negative");
  const Placement place = resolve_placement(o.device, o.dtype);
  const ModelConfig config = ModelConfig::from_file(o.config_path);
  TensorMap master = convert(init_parameters(config, 1, DType::f32), place.device, DType::f32);
  Model model(config, convert(master, place.device, place.dtype));
  AdamW adam(ops::AdamWConfig{3e-4, 0.9, 0.95, 1e-8, 0.1});

  // Full-sequence loss on task samples: every position has a target, as in pre-training.
  FillerText filler;
  auto source = make_task_batches({TaskKind::passkey}, o.batch, o.seq_len, 1, filler, /*answer_only_loss=*/false);
  std::vector<Batch> batches;
  for (int i = 0; i < o.warmup_steps + o.steps; ++i) batches.push_back(source->next());

  TrainBenchResult r;
  r.device = place.description;
  r.dtype = std::string(dtype_name(place.dtype));
  r.parameters = count_parameters(model_param_specs(config));
  r.active_parameters = active_parameters_per_token(config);
  r.flops = training_flops_per_token(config, o.seq_len);
  for (int i = 0; i < o.warmup_steps + o.steps; ++i) {
    synchronize_device(place.device);
    const auto t0 = std::chrono::steady_clock::now();
    TensorMap grads;
    run_batch(model, batches[size_t(i)], &grads, 1.0);
    apply_update(model, master, adam, grads, 3e-4, 1.0);
    synchronize_device(place.device);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= o.warmup_steps) r.step_ms.push_back(ms);
  }
  std::vector<double> sorted = r.step_ms;
  std::sort(sorted.begin(), sorted.end());
  r.median_ms = sorted[sorted.size() / 2];
  r.tokens_per_s = double(o.batch * o.seq_len) / (r.median_ms * 1e-3);
  r.model_tflops = r.flops.per_token() * r.tokens_per_s / 1e12;
  if (auto peak = device_peak(place.description)) {
    r.peak_tflops = peak->flops_per_s / 1e12;
    r.mfu = r.model_tflops / *r.peak_tflops;
  }
  return r;
}

nlohmann::json train_bench_json(const TrainBenchOptions& o, const TrainBenchResult& r, const std::string& commit,
                                const std::string& command) {
  nlohmann::json j = {
      {"device", r.device},
      {"commit", commit},
      {"command", command},
      {"config", o.config_path},
      {"seq_len", o.seq_len},
      {"batch", o.batch},
      {"dtype", r.dtype},
      {"parameters", r.parameters},
      {"active_parameters", r.active_parameters},
      {"flops_per_token", {{"matmul", r.flops.matmul}, {"swa", r.flops.swa}, {"hsa", r.flops.hsa},
                           {"retrieval", r.flops.retrieval}, {"encoder", r.flops.encoder},
                           {"total", r.flops.per_token()}}},
      {"step_ms", r.step_ms},
      {"median_ms", r.median_ms},
      {"tokens_per_s", r.tokens_per_s},
      {"model_tflops", r.model_tflops},
      {"peak_tflops", r.peak_tflops ? nlohmann::json(*r.peak_tflops) : nlohmann::json()},
      {"mfu", r.mfu ? nlohmann::json(*r.mfu) : nlohmann::json()}};
  return j;
}

}  // namespace hsa::bench

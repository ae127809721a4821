// AdamW over named parameters, with global-norm gradient clipping and a warmup + cosine learning rate.
#pragma once
#include "model/tensor_map.h"
#include "ops/adamw.h"

namespace hsa {

struct ScheduleConfig {
  double lr = 3e-3;
  double min_lr_ratio = 0.1;  // final lr = lr * min_lr_ratio
  int64_t warmup_steps = 20;
  int64_t total_steps = 1000;
};

// Linear warmup to lr over warmup_steps, then cosine decay to lr * min_lr_ratio at total_steps. step is 1-based.
double learning_rate(const ScheduleConfig& schedule, int64_t step);

// Scales every gradient so their joint L2 norm is at most max_norm (no-op when max_norm <= 0); returns the
// norm before clipping.
double clip_grad_norm(TensorMap& grads, double max_norm);

class AdamW {
 public:
  AdamW() = default;
  explicit AdamW(const ops::AdamWConfig& config) : config_(config) {}
  // One update of every parameter that has a gradient; no-decay for norms (1-D weights).
  void step(TensorMap& params, const TensorMap& grads, double lr);
  int64_t steps() const { return step_; }

  // Optimizer state as named tensors ("m.<param>", "v.<param>") for checkpoints.
  TensorMap state() const;
  void load_state(const TensorMap& state, int64_t steps);

 private:
  ops::AdamWConfig config_;
  TensorMap m_, v_;
  int64_t step_ = 0;
};

}  // namespace hsa

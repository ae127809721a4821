// AdamW optimizer step (decoupled weight decay, bias-corrected moments), in place on one parameter tensor.
// param, grad, m, v: one shape. param f32 or f64 (the master copy; bf16 weights keep an f32 master);
// m, v the same dtype as param; grad any floating dtype (converted to param's).
#pragma once
#include <hsa/tensor.h>

#include <cstdint>

namespace hsa::ops {

struct AdamWConfig {
  double lr;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

// step is 1-based (the first update is step 1). Per element:
//   param -= lr * wd * param;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   param -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps).
// param, m and v must be contiguous (they are updated in place).
void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, int64_t step, const AdamWConfig& cfg);

}  // namespace hsa::ops

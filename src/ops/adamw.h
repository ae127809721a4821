// AdamW with decoupled weight decay (Loshchilov & Hutter): one in-place update of a parameter.
// param, grad, m, v: same shape; m and v in the parameter's compute dtype (f32 or f64).
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

// step is 1-based (bias correction uses it).
void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, int64_t step, const AdamWConfig& config);

}  // namespace hsa::ops

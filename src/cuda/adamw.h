// AdamW step on the GPU (see ops/adamw.h), in place. param, m, v f32 [n]; grad G = float | hsa::bf16 [n].
#pragma once
#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

template <class G>
void adamw_step(float* param, const G* grad, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t step);

}  // namespace hsa::cuda

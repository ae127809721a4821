// CPU AdamW kernel over n contiguous values.
#pragma once
#include <cstdint>

namespace hsa::cpu {

template <class T>
void adamw_step(T* param, const T* grad, T* m, T* v, int64_t n, double lr, double beta1, double beta2, double eps,
                double weight_decay, int64_t step);

}  // namespace hsa::cpu

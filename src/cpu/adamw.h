// CPU AdamW update over n contiguous elements, in place. param, grad, m, v [n].
#pragma once
#include <cstdint>

namespace hsa::cpu {

// m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
// param = param * (1 - lr wd) - lr * (m / bc1) / (sqrt(v / bc2) + eps), bc1 = 1 - beta1^step, bc2 = 1 - beta2^step.
template <class T>
void adamw_step(T* param, const T* grad, T* m, T* v, int64_t n, double lr, double beta1, double beta2, double eps,
                double weight_decay, int64_t step);

}  // namespace hsa::cpu

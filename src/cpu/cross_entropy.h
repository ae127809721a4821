// CPU cross-entropy kernels. logits, dlogits [N, V]; targets [N]; lse, row_loss [N].
#pragma once
#include <cstdint>

namespace hsa::cpu {

template <class T>
void cross_entropy_forward(const T* logits, const int32_t* targets, T* lse, double* row_loss, int64_t n, int64_t v,
                           int32_t ignore_index);
template <class T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const T* lse, T* dlogits, int64_t n, int64_t v,
                            double scale, int32_t ignore_index);

}  // namespace hsa::cpu

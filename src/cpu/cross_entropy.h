// CPU softmax cross entropy over rows. logits, dlogits [N, V]; targets i32 [N]; lse [N]; row_loss [N].
// Targets are validated by the op (each in [0, V) or equal to ignore_index) before these run.
#pragma once
#include <cstdint>

namespace hsa::cpu {

// lse[n] = log sum_v exp(logits[n, v]) (max-subtracted); row_loss[n] = lse[n] - logits[n, targets[n]], or 0 for
// an ignored row. Sums run in double.
template <class T>
void cross_entropy_forward(const T* logits, const int32_t* targets, T* lse, double* row_loss, int64_t n, int64_t v,
                           int32_t ignore_index);

// dlogits[n, :] = scale * (softmax(logits[n, :]) - onehot(targets[n])), zero for ignored rows.
template <class T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const T* lse, T* dlogits, int64_t n, int64_t v,
                            int32_t ignore_index, double scale);

}  // namespace hsa::cpu

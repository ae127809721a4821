// Softmax cross-entropy loss over the vocabulary, averaged over the targets that are not ignore_index.
// logits, dlogits [N, V]; targets i32 [N] (each in [0, V) or equal to ignore_index); lse [N].
//   loss = (1/count) sum_{n: targets[n] != ignore_index} (lse[n] - logits[n, targets[n]]),
//   lse[n] = log sum_v exp(logits[n, v]); loss = 0 and count = 0 when every target is ignored.
#pragma once
#include <hsa/tensor.h>

#include <cstdint>

namespace hsa::ops {

struct CrossEntropyOut {
  double loss;    // mean over counted rows (summed in double)
  int64_t count;  // rows whose target is not ignore_index
  Tensor lse;     // [N], compute dtype (f32 for bf16 logits); kept for the backward pass
};
CrossEntropyOut cross_entropy_forward(const Tensor& logits, const Tensor& targets, int32_t ignore_index = -100);

// dlogits [N, V] in logits' dtype: (softmax - onehot(target)) * dloss / count per counted row, zero rows for
// ignored targets (all zero when count is 0). dloss = dL/dloss.
Tensor cross_entropy_backward(double dloss, const Tensor& logits, const Tensor& targets, const Tensor& lse,
                              int32_t ignore_index = -100);

}  // namespace hsa::ops

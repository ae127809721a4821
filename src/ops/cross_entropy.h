// Softmax cross-entropy with an ignore index: loss = mean over counted rows of (logsumexp(logits) - logit[target]).
// logits [N, V]; targets i32 [N]; rows whose target is ignore_index are not counted.
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

struct CrossEntropyOut {
  double loss = 0;    // 0 when no row counts
  int64_t count = 0;  // rows counted
  Tensor lse;         // [N] log-sum-exp per row, for backward
};
CrossEntropyOut cross_entropy_forward(const Tensor& logits, const Tensor& targets, int32_t ignore_index = -100);

// dlogits [N, V] = dloss / count * (softmax - onehot(target)) on counted rows, 0 elsewhere.
Tensor cross_entropy_backward(double dloss, const Tensor& logits, const Tensor& targets, const Tensor& lse,
                              int32_t ignore_index = -100);

}  // namespace hsa::ops

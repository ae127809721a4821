// Token embedding: y[..., :] = table[ids[...], :].  table [V, dm], ids i32 [...], y [..., dm].
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

Tensor embedding_forward(const Tensor& table, const Tensor& ids);
// dtable [V, dm]: rows of repeated ids accumulate.
Tensor embedding_backward(const Tensor& dy, const Tensor& ids, int64_t vocab_size);

}  // namespace hsa::ops

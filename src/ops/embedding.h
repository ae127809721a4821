// Token embedding: y[..., :] = table[ids[...], :].
// table [V, dm] (f32, bf16, f64); ids i32 [...] (any shape, values in [0, V)); y, dy [..., dm].
#pragma once
#include <hsa/tensor.h>

#include <cstdint>

namespace hsa::ops {

// y has ids' shape plus a trailing dm axis, in table's dtype. An id outside [0, V) is an error that names the id
// and its index in ids.
Tensor embedding_forward(const Tensor& table, const Tensor& ids);

// dtable [vocab_size, dm] in dy's dtype: scatter-add of dy's rows by id (repeated ids accumulate). Deterministic:
// every row is summed in ascending position order whatever the thread count.
Tensor embedding_backward(const Tensor& dy, const Tensor& ids, int64_t vocab_size);

}  // namespace hsa::ops

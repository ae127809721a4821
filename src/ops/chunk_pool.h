// Mean of every complete chunk (the landmark input, ARCHITECTURE §1.3): pooled[b, c] = mean_j x[b, c*S + j].
// x [B, L, dm] -> pooled [B, L / S, dm]; the incomplete tail chunk is left out.
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

Tensor chunk_mean_forward(const Tensor& x, int64_t chunk_size);
// dx [B, seq_len, dm]; tail tokens (in no complete chunk) get zero.
Tensor chunk_mean_backward(const Tensor& dpooled, int64_t seq_len, int64_t chunk_size);

}  // namespace hsa::ops

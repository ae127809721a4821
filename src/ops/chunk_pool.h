// Chunk mean pooling (docs/architecture.md §2.4): the mean of each complete chunk of S tokens, the input of the landmark
// projection E[c] = W_lmk * mean_j RMSNorm(h[cS + j]). The RMSNorm and W_lmk are separate ops run by the model.
//   x, dx [B, L, dm]; pooled, dpooled [B, C, dm] with C = floor(L / chunk_size): complete chunks only, the tail
//   L - C*S tokens of an incomplete last chunk belong to no landmark (and get a zero gradient).
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

// pooled[b, c] = (1/S) sum_{j<S} x[b, c*S + j]. Result in x's dtype (bf16 is averaged in f32).
Tensor chunk_mean_forward(const Tensor& x, int64_t chunk_size);

// dx[b, t] = dpooled[b, t / S] / S for t < C*S, 0 for the tail. dx has dpooled's dtype, shape [B, seq_len, dm];
// dpooled must have C = floor(seq_len / chunk_size) chunks.
Tensor chunk_mean_backward(const Tensor& dpooled, int64_t seq_len, int64_t chunk_size);

}  // namespace hsa::ops

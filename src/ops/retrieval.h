// HSA retrieval (ARCHITECTURE §1.4 steps 1-3): every query scores the landmarks of the chunks it may see,
// keeps the top K and turns their scores into chunk weights.
//   qr [B, L, H, dr] retrieval queries (one retrieval head per KV head); landmarks [B, C, H, dr].
// Query row t sits at position pos = q_start + t. Chunk c is visible when it is complete, (c + 1) * S <= pos,
// and, with window > 0, not wholly inside the sliding window: c * S <= pos - window.
// Slots hold the chosen chunks best first (descending score, ties to the more recent chunk); with
// stick-breaking they are ordered most recent first, the order the weights are computed in.
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

enum class ChunkWeighting { softmax, stick_breaking };

struct RetrievalParams {
  int64_t chunk_size = 64;  // S > 0
  int64_t topk = 8;         // K > 0
  int64_t window = 0;       // > 0: hide chunks wholly inside the SWA window
  int64_t q_start = 0;      // absolute position of query row 0
  double scale = 0;         // 0: 1/sqrt(dr)
  ChunkWeighting weighting = ChunkWeighting::softmax;
};

struct RetrievalOut {
  Tensor indices;  // i32 [B, L, H, K]: chosen chunks, -1 in empty slots
  Tensor weights;  // [B, L, H, K]: softmax over the chosen (sums to 1), or stick-breaking (sums to <= 1); 0 if empty
  Tensor scores;   // [B, L, H, K]: scaled scores of the chosen chunks, 0 if empty
};
RetrievalOut retrieval_forward(const Tensor& qr, const Tensor& landmarks, const RetrievalParams& p);

struct RetrievalGrads {
  Tensor dqr, dlandmarks;
};
// The selection itself is not differentiated: gradients flow from the weights into the chosen scores.
RetrievalGrads retrieval_backward(const Tensor& dweights, const Tensor& qr, const Tensor& landmarks,
                                  const RetrievalOut& fwd, const RetrievalParams& p);

}  // namespace hsa::ops

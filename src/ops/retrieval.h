// HSA chunk retrieval (docs/architecture.md §2.5 steps 1-3 and §2.6): score every visible chunk's landmark against the
// retrieval query, keep the top-K chunks, and weight them (softmax or stick-breaking).
//   qr, dqr [B, L, H, dr]   retrieval queries, H retrieval heads (one per KV head), dr = dim per head
//   landmarks, dlandmarks [B, C, H, dr]   one landmark per chunk (C may exceed the chunks a query can see)
//   indices i32 [B, L, H, K]; weights, scores, dweights [B, L, H, K]
//
// Visibility. Query row t sits at absolute position pos = q_start + t. Chunk c (tokens [cS, (c+1)S)) is visible
// iff it is complete before the query, (c+1)*S <= pos, and, when window W > 0, it does not lie wholly inside the
// SWA window (t - W, t]: c*S <= pos - W. The visible chunks are therefore a prefix [0, n_visible) of the landmarks.
//
// score[t, h, c] = scale * <qr[t, h], landmarks[c, h]>. Selection: the K visible chunks with the highest score;
// equal scores prefer the more recent chunk (larger c). Selection is exact on the scores as computed (a GEMM), so
// identical landmarks tie exactly and the most recent ones win. NaN scores are never selected.
//
// Slot order (the K axis):
//   softmax:        descending score, ties -> larger chunk index first; w = softmax over the filled slots.
//   stick_breaking: descending chunk index (most recent first, the order the sticks are broken in);
//                   w_i = sigmoid(s_i) * prod_{j<i} (1 - sigmoid(s_j)); sum_i w_i <= 1, the rest is "nothing".
// Filled slots come first; when fewer than K chunks are visible the remaining slots hold index -1, weight 0,
// score 0 (no chunk visible: all slots empty).
//
// Backward: gradients flow from dweights through the weighting into the selected scores and from there into qr
// and landmarks; the top-K choice itself is not differentiated (it is read from fwd.indices).
#pragma once
#include "ops/hsa_routing.h"

#include <hsa/tensor.h>

namespace hsa::ops {

enum class ChunkWeighting { softmax, stick_breaking };

struct RetrievalParams {
  int64_t chunk_size;    // S > 0
  int64_t topk;          // K > 0
  int64_t window = 0;    // >= 0; > 0: also hide chunks lying wholly inside the SWA window
  int64_t q_start = 0;   // >= 0; absolute position of query row 0 (chunked prefill, decode)
  double scale = 0;      // 0 means 1/sqrt(dr)
  ChunkWeighting weighting = ChunkWeighting::softmax;
};

// All three in the compute dtype (f32 for bf16 inputs): weights and scores are small and feed the chunk
// attention and the backward pass.
struct RetrievalOut {
  Tensor indices;  // i32 [B, L, H, K]: selected chunk ids in slot order (above); -1 for empty slots
  Tensor weights;  // [B, L, H, K]: chunk weights, 0 in empty slots
  Tensor scores;   // [B, L, H, K]: scaled scores of the selected chunks (saved for backward), 0 in empty slots
};

RetrievalOut retrieval_forward(const Tensor& qr, const Tensor& landmarks, const RetrievalParams& p);

struct RetrievalGrads {
  Tensor dqr;         // like qr (its dtype)
  Tensor dlandmarks;  // like landmarks; 0 for chunks no query selected
};

// dweights = dloss/dweights, any float dtype. fwd is retrieval_forward(qr, landmarks, p) with the same p.
// routing: the chunk routing that hsa_attention_forward built from fwd.indices (the same tensor) with as many chunks
// as `landmarks` has (ops/hsa_routing.h): the CUDA path then skips its sort, with bit-identical results, and a bad
// index was reported by that forward (not again here). Empty: it builds one. The CPU ignores it.
RetrievalGrads retrieval_backward(const Tensor& dweights, const Tensor& qr, const Tensor& landmarks,
                                  const RetrievalOut& fwd, const RetrievalParams& p, const HsaRouting& routing = {});

}  // namespace hsa::ops

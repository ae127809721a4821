// Device code shared by the CUDA retrieval forward kernels (not a public header): the selection order, the end of
// a row (slot order, empty slots, weights), and the launchers of the kernels that live in their own files.
//   retrieval.cu        the scalar kernel (f32 and the shapes the others do not take), the backward, the dispatch
//   retrieval_mma.cu    bf16 tensor-core forward: query tiles against streamed landmark tiles, top-K in the stream
//   retrieval_gated.cu  the same scores, 256-row blocks, one exact gate per row and batched inserts
//   retrieval_split.cu  few query rows (decode): the chunks split over blocks, then a merge per row
// Semantics (visibility, tie rule, slot order, weightings) as in ops/retrieval.h.
#pragma once
#include "cuda/hsa_support.cuh"
#include "cuda/retrieval.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

namespace hsa::cuda::detail {

// The selection order: (score a, chunk a) comes before (score b, chunk b) when its score is higher, or equal (-0
// equals +0, as on the CPU) on a more recent chunk. A row's chunk ids are distinct, so this is a strict total order:
// the top-K set and its order do not depend on the order candidates are met in. NaN scores never get here (they
// are never selected).
__device__ __forceinline__ bool retrieval_before(float sa, int32_t ca, float sb, int32_t cb) {
  return sa > sb || (sa == sb && ca > cb);
}

__device__ __forceinline__ float retrieval_sigmoid(float x) {
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}

// Ends one output row oc, os, ow [K] (indices, scores, weights) whose slots [0, n) hold the chosen chunks and their
// scores in the selection order (best first: the softmax slots), written by this thread: stick-breaking slots (the
// most recent chunk first: the n <= K chunks sorted by id, descending), empty slots [n, K) (-1, 0, 0) and the
// weights over os[0, n).
__device__ __forceinline__ void retrieval_finish_row(int32_t* oc, float* os, float* ow, int n, int64_t K,
                                                     bool stick_breaking) {
  if (stick_breaking)
    for (int i = 1; i < n; ++i) {  // insertion sort; ids are distinct
      const int32_t c = oc[i];
      const float s = os[i];
      int j = i;
      for (; j > 0 && oc[j - 1] < c; --j) {
        oc[j] = oc[j - 1];
        os[j] = os[j - 1];
      }
      oc[j] = c;
      os[j] = s;
    }
  for (int64_t i = n; i < K; ++i) {
    oc[i] = -1;
    os[i] = 0;
    ow[i] = 0;
  }
  if (stick_breaking) {
    float remaining = 1;
    for (int i = 0; i < n; ++i) {
      ow[i] = retrieval_sigmoid(os[i]) * remaining;
      remaining *= retrieval_sigmoid(-os[i]);  // 1 - sigmoid(s), without cancellation
    }
  } else if (n > 0) {
    const float mx = os[0];  // the best score: softmax slots are sorted
    float sum = 0;
    for (int i = 0; i < n; ++i) sum += ow[i] = expf(os[i] - mx);
    for (int i = 0; i < n; ++i) ow[i] /= sum;
  }
}

// ---- host ----------------------------------------------------------------------------------------------------

// How the tensor-core kernels split the chunks over blocks: with fewer blocks than `want` (a short prefill segment
// against a long memory would leave most SMs idle while each block scans every landmark) and at least
// 2 kMinSplitChunks visible chunks, each block takes split_chunks of them (whole tiles of `tile` landmarks, at least
// kMinSplitChunks) and writes its rows' best K as partial lists that retrieval_merge_partials merges; exact, since a
// row's top K lies in the union of its splits'. Otherwise splits = 1 and split_chunks covers every chunk.
struct ChunkSplits {
  int64_t splits = 1, split_chunks = 1;
};
inline constexpr int64_t kMinSplitChunks = 512;
inline ChunkSplits plan_chunk_splits(int64_t blocks, int64_t n_all, int64_t want, int64_t tile) {
  ChunkSplits plan{1, n_all > 1 ? n_all : 1};
  if (blocks < want && n_all >= 2 * kMinSplitChunks) {
    const int64_t splits = std::min(ceil_div(want, blocks), n_all / kMinSplitChunks);
    plan.split_chunks = ceil_div(ceil_div(n_all, splits), tile) * tile;  // whole tiles
    plan.splits = ceil_div(n_all, plan.split_chunks);
  }
  return plan;
}

// ---- launchers (host) -------------------------------------------------------------------------------------------
// Raw contiguous device pointers as in cuda/retrieval.h; nothing waits for the device.

// Shared memory of the tensor-core kernel for these dims, or 0 when it does not take them (bf16 only; dr a multiple
// of 8 and at most 128). The caller also checks max_smem_optin() and that qr and landmarks are 16-byte aligned.
size_t retrieval_mma_smem(const RetrievalDims& d);
void retrieval_mma_forward(const __nv_bfloat16* qr, const __nv_bfloat16* landmarks, int32_t* indices,
                           float* weights, float* scores, const RetrievalDims& d, float scale);

// The gated kernel (retrieval_gated.cu): the same conditions as the mma kernel, its own shared memory.
size_t retrieval_gated_smem(const RetrievalDims& d);
void retrieval_gated_forward(const __nv_bfloat16* qr, const __nv_bfloat16* landmarks, int32_t* indices,
                             float* weights, float* scores, const RetrievalDims& d, float scale);

// Partial lists: part_s, part_c [B, L, H, splits, K], each the best K of one row over one range of chunks, in the
// selection order, chunk -1 after the last. Merges every row's lists into the outputs (one warp per row).
void retrieval_merge_partials(const float* part_s, const int32_t* part_c, int64_t splits, int32_t* indices,
                              float* weights, float* scores, const RetrievalDims& d);

// The split kernel takes at most kRetrievalSplitMaxRows query rows (cuda/retrieval.h); its shared memory.
size_t retrieval_split_smem(const RetrievalDims& d);
template <class T>
void retrieval_split_forward(const T* qr, const T* landmarks, int32_t* indices, float* weights, float* scores,
                             const RetrievalDims& d, float scale);

}  // namespace hsa::cuda::detail

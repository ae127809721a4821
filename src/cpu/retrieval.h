// CPU HSA retrieval kernels: scores against landmarks, visibility masks, top-K, chunk weights; and their backward.
//   qr, dqr [B, L, H, dr]; landmarks, dlandmarks [B, C, H, dr];
//   indices i32 [B, L, H, K]; weights, scores, dweights [B, L, H, K]
// Semantics (visibility, slot order, weightings) are documented in ops/retrieval.h.
#pragma once
#include <algorithm>
#include <cstdint>

namespace hsa::cpu {

struct RetrievalDims {
  int64_t batch = 0, seq_len = 0, chunks = 0, heads = 0, dim = 0;  // B, L, C, H, dr
  int64_t chunk_size = 0, topk = 0, window = 0, q_start = 0;       // S, K, W, absolute position of row 0
  bool stick_breaking = false;                                      // else softmax
};

// Number of chunks visible from absolute position pos: they are the prefix [0, n). Complete: (c+1)*S <= pos;
// outside the window (W > 0): c*S <= pos - W; and c < C. The one visibility rule: the CUDA kernels call it too
// (host and device; plain comparisons rather than std::min so nvcc needs no relaxed constexpr).
#ifdef __CUDACC__
__host__ __device__
#endif
inline int64_t retrieval_visible_chunks(int64_t pos, const RetrievalDims& d) {
  int64_t n = pos / d.chunk_size;
  if (d.window > 0) {
    const int64_t outside = pos < d.window ? 0 : (pos - d.window) / d.chunk_size + 1;
    n = n < outside ? n : outside;
  }
  return n < 0 ? 0 : n > d.chunks ? d.chunks : n;
}

// Work per task: one (b, h) pair and a tile of up to kRetrievalTileRows query rows. Their scores come from GEMMs
// over blocks of up to kRetrievalTileChunks visible chunks into a per-thread [rows, chunks] buffer, and each row
// keeps a running top-K as the blocks stream by. Per-thread memory is therefore fixed (256 KiB in f32) whatever C
// is, and the [L, C] score matrix never exists.
inline constexpr int64_t kRetrievalTileRows = 32;
inline constexpr int64_t kRetrievalTileChunks = 2048;

template <class T>
void retrieval_forward(const T* qr, const T* landmarks, int32_t* indices, T* weights, T* scores,
                       const RetrievalDims& d, double scale);

// dlandmarks is accumulated chunk-major: the (query, slot) pairs that selected each chunk are grouped by chunk (a
// counting sort per (b, h), queries ascending), and each chunk's row sums over its group in that order. No races,
// and the result does not depend on the thread count. Extra memory: a [B, L, H, K] score-gradient buffer and an
// int32 [B, H, L*K] entry list. Requires L*K < 2^31.
// Returns -1, or the flat position of an index outside [-1, C) (then the outputs are unspecified).
template <class T>
int64_t retrieval_backward(const T* dweights, const T* qr, const T* landmarks, const int32_t* indices,
                           const T* weights, const T* scores, T* dqr, T* dlandmarks, const RetrievalDims& d,
                           double scale);

}  // namespace hsa::cpu

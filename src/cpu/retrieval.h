// CPU HSA retrieval kernels: scores against landmarks, visibility masks, top-K, chunk weights; and their backward.
//   qr, dqr [B, L, H, dr]; landmarks, dlandmarks [B, C, H, dr];
//   indices i32 [B, L, H, K]; weights, scores, dweights [B, L, H, K]
// Semantics (visibility, slot order, weightings) are documented in ops/retrieval.h.
#pragma once
#include "kernel/shapes.h"

#include <cstdint>

namespace hsa::cpu {

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

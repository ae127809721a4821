// CPU retrieval kernels (shapes as in ops/retrieval.h, all contiguous). Scores are computed per block of
// queries with one GEMM against the landmarks, never as an L x C matrix for the whole sequence.
#pragma once
#include <cstdint>

namespace hsa::cpu {

struct RetrievalShape {
  int64_t B, L, C, H, dr, K;
  int64_t chunk_size, window, q_start;
  double scale;
  bool stick_breaking;
};

// Number of chunks visible to a query at absolute position pos (they are chunks 0 .. n-1).
int64_t visible_chunks(const RetrievalShape& s, int64_t pos);

template <class T>
void retrieval_forward(const T* qr, const T* landmarks, int32_t* indices, T* weights, T* scores,
                       const RetrievalShape& s);
template <class T>
void retrieval_backward(const T* dweights, const T* qr, const T* landmarks, const int32_t* indices, const T* weights,
                        const T* scores, T* dqr, T* dlandmarks, const RetrievalShape& s);

}  // namespace hsa::cpu

// Token embedding on the GPU. T = float | hsa::bf16.
// table, dtable [vocab_size, dm]; ids i32 [n]; y, dy [n, dm]; device pointers, contiguous.
// Ids outside [0, vocab_size) give zero rows (forward) or are skipped (backward) and are reported as an input
// error at the next cuda::synchronize() (see cuda/runtime.h).
#pragma once
#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

template <class T>
void embedding_forward(const T* table, const int32_t* ids, T* y, int64_t n, int64_t dm, int64_t vocab_size);
// Scatter-add with f32 atomics (bf16 accumulates in an f32 scratch table and is rounded once): the order in
// which repeated ids are summed varies from run to run, so results are reproducible only to f32 rounding.
template <class T>
void embedding_backward(const T* dy, const int32_t* ids, T* dtable, int64_t n, int64_t dm, int64_t vocab_size);

}  // namespace hsa::cuda

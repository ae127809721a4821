// GEMM on the CPU through BLAS: C = alpha * op(A) op(B) + beta * C, row-major.
// op(A) is [M, K], op(B) is [K, N]; lda/ldb/ldc are row strides of the stored matrices.
#pragma once
#include <cstdint>

namespace hsa::cpu {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc);

// Number of BLAS threads for calls from outside a parallel region (inside one, BLAS runs on one thread).
int blas_threads();

}  // namespace hsa::cpu

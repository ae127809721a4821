// GEMM on the CPU through BLAS: C = alpha * op(A) op(B) + beta * C, row-major.
// op(A) is [M, K], op(B) is [K, N]; lda/ldb/ldc are row strides of the stored matrices.
#pragma once
#include <cstdint>

namespace hsa::cpu {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc);

// Construct one (outside any parallel region) around an OpenMP region whose threads call gemm: while it lives,
// every BLAS call runs on its calling thread alone. The OpenMP build of OpenBLAS does that by itself; the
// pthreads build (the only one on the device machines) hands each call to its one shared thread pool instead, so
// 16 threads calling at once run ~100x slower than with this scope. No-op for other builds and when nested.
class BlasSerialScope {
 public:
  BlasSerialScope();
  ~BlasSerialScope();
  BlasSerialScope(const BlasSerialScope&) = delete;
  BlasSerialScope& operator=(const BlasSerialScope&) = delete;

 private:
  int saved_threads_ = 0;  // BLAS thread count to restore; 0 when nothing was changed
};

}  // namespace hsa::cpu

#include "cpu/gemm.h"

#include <cblas.h>
#include <omp.h>

// OpenBLAS extensions, weak so that linking against another BLAS still works (they are then null).
extern "C" {
__attribute__((weak)) int openblas_get_parallel(void);  // 0 sequential, 1 pthreads, 2 OpenMP
__attribute__((weak)) int openblas_get_num_threads(void);
__attribute__((weak)) void openblas_set_num_threads(int num_threads);
}

namespace hsa::cpu {

template <>
void gemm<float>(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
}

template <>
void gemm<double>(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                  int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
}

BlasSerialScope::BlasSerialScope() {
  if (omp_in_parallel() || !openblas_get_parallel || !openblas_get_num_threads || !openblas_set_num_threads) return;
  if (openblas_get_parallel() != 1) return;
  int threads = openblas_get_num_threads();
  if (threads <= 1) return;
  saved_threads_ = threads;
  openblas_set_num_threads(1);
}

BlasSerialScope::~BlasSerialScope() {
  if (saved_threads_ > 0) openblas_set_num_threads(saved_threads_);
}

}  // namespace hsa::cpu

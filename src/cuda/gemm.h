// GEMM on the GPU through cuBLASLt, row-major like cpu::gemm: C = alpha * op(A) op(B) + beta * C on stream().
// op(A) is [M, K], op(B) is [K, N]; lda/ldb/ldc are row strides of the stored matrices (device pointers).
// T = float: f32 in and out with true f32 math (CUBLAS_COMPUTE_32F, no TF32), so results match the CPU to
// ~1e-6. T = bf16: bf16 in and out, f32 accumulation. alpha and beta are f32 for both (cuBLASLt's scale type).
// k == 0 writes beta * C (zeros for beta = 0). One handle and a 32 MiB workspace, created on first use; the
// algorithm chosen for each shape/alignment is cached.
#pragma once
#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, float beta, T* c, int64_t ldc);

}  // namespace hsa::cuda

#include "cuda/gemm.h"

#include "cuda/kernel_util.cuh"

#include <hsa/error.h>

#include <cublasLt.h>

#include <mutex>
#include <tuple>
#include <map>

namespace hsa::cuda {

namespace {

void check_cublas(cublasStatus_t status, const char* what) {
  HSA_CHECK(status == CUBLAS_STATUS_SUCCESS, "cuBLASLt error in {}: {} ({})", what, cublasLtGetStatusString(status),
            static_cast<int>(status));
}

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

// Largest power of two (up to 256) dividing the address: cuBLASLt picks kernels assuming these alignments.
uint32_t alignment_of(const void* p) {
  auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && address % a != 0) a >>= 1;
  return a;
}

// Everything a matmul's descriptors and algorithm depend on.
using PlanKey = std::tuple<int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, uint32_t, uint32_t,
                           uint32_t>;

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

struct Context {
  std::mutex mutex;
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::map<PlanKey, Plan> plans;
};

// Created on first use and kept for the life of the process (a handle outliving static destruction is harmless).
Context& context() {
  static Context* ctx = [] {
    auto* c = new Context;
    check_cublas(cublasLtCreate(&c->handle), "cublasLtCreate");
    c->workspace = device_malloc(kWorkspaceBytes);
    return c;
  }();
  return *ctx;
}

// Column-major layout of a row-major matrix stored with `rows_rm` rows, `cols_rm` columns and row stride ld.
cublasLtMatrixLayout_t layout(cudaDataType type, int64_t rows_rm, int64_t cols_rm, int64_t ld) {
  cublasLtMatrixLayout_t l = nullptr;
  // cuBLAS wants ld >= rows of the column-major view even where a single column makes ld irrelevant.
  int64_t ld_cm = std::max<int64_t>({ld, cols_rm, 1});
  check_cublas(cublasLtMatrixLayoutCreate(&l, type, static_cast<uint64_t>(cols_rm), static_cast<uint64_t>(rows_rm),
                                          ld_cm),
               "cublasLtMatrixLayoutCreate");
  return l;
}

Plan make_plan(Context& ctx, cudaDataType type, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
               int64_t lda, int64_t ldb, int64_t ldc, uint32_t align_a, uint32_t align_b, uint32_t align_c) {
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: hand cuBLASLt B as its first operand.
  Plan p;
  check_cublas(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  cublasOperation_t op_first = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t op_second = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)),
               "set TRANSA");
  check_cublas(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)),
               "set TRANSB");
  // Stored shapes (row-major): B is [K, N] (or [N, K] transposed), A is [M, K] (or [K, M]), C is [M, N].
  p.a = trans_b ? layout(type, n, k, ldb) : layout(type, k, n, ldb);
  p.b = trans_a ? layout(type, k, m, lda) : layout(type, m, k, lda);
  p.c = layout(type, m, n, ldc);

  cublasLtMatmulPreference_t pref = nullptr;
  check_cublas(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  size_t ws = kWorkspaceBytes;
  check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)),
               "set workspace");
  uint32_t alignments[4] = {align_b, align_a, align_c, align_c};  // first operand is B
  cublasLtMatmulPreferenceAttributes_t attrs[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i)
    check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, attrs[i], &alignments[i], sizeof(uint32_t)),
                 "set alignment");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  check_cublas(cublasLtMatmulAlgoGetHeuristic(ctx.handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found),
               "cublasLtMatmulAlgoGetHeuristic");
  cublasLtMatmulPreferenceDestroy(pref);
  HSA_CHECK(found > 0, "cuda::gemm: cuBLASLt has no algorithm for m={} n={} k={} lda={} ldb={} ldc={} ({})", m, n, k,
            lda, ldb, ldc, type == CUDA_R_32F ? "f32" : "bf16");
  p.algo = result.algo;
  return p;
}

// C[i, j] = beta * C[i, j] for an empty inner dimension.
template <class T> __global__ void scale_matrix(T* c, int64_t m, int64_t n, int64_t ldc, float beta) {
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < m * n;
       idx += int64_t(gridDim.x) * blockDim.x) {
    int64_t i = idx / n, j = idx % n;
    T* p = c + i * ldc + j;
    *p = from_f32<T>(beta == 0.f ? 0.f : beta * to_f32(*p));
  }
}

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, float beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  using D = device_t<T>;
  if (k == 0) {
    scale_matrix<D><<<grid_for(m * n, 256), 256, 0, stream()>>>(dev(c), m, n, ldc, beta);
    check_launch("scale_matrix");
    return;
  }
  constexpr cudaDataType type = std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
  Context& ctx = context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  PlanKey key{int(type), trans_a, trans_b, m, n, k, lda, ldb, ldc, alignment_of(a), alignment_of(b), alignment_of(c)};
  auto it = ctx.plans.find(key);
  if (it == ctx.plans.end())
    it = ctx.plans
             .emplace(key, make_plan(ctx, type, trans_a, trans_b, m, n, k, lda, ldb, ldc, std::get<9>(key),
                                     std::get<10>(key), std::get<11>(key)))
             .first;
  const Plan& p = it->second;
  check_cublas(cublasLtMatmul(ctx.handle, p.desc, &alpha, b, p.a, a, p.b, &beta, c, p.c, c, p.c, &p.algo,
                              ctx.workspace, kWorkspaceBytes, stream()),
               "cublasLtMatmul");
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<bf16>(bool, bool, int64_t, int64_t, int64_t, float, const bf16*, int64_t, const bf16*, int64_t,
                         float, bf16*, int64_t);

}  // namespace hsa::cuda

// cuda::gemm (cuBLASLt) against the definition: every transpose combination, padded row strides, odd sizes, beta.
#include "cuda/gemm.h"
#include "gpu/parity.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

namespace {

// C = alpha op(A) op(B) + beta C with stored matrices padded by 3 columns, compared on the valid region.
void check_gemm(DType dtype, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, float beta,
                uint64_t seed) {
  const int64_t pad = 3;
  int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
  Tensor a = random_input({a_rows, a_cols + pad}, seed, dtype), b = random_input({b_rows, b_cols + pad}, seed + 1, dtype),
         c = random_input({m, n + pad}, seed + 2, dtype);
  // Reference: the definition, in double, over the values the GPU sees (bf16 inputs already rounded).
  Tensor expected = c.to(DType::f32).clone();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p)
        acc += (ta ? a.item({p, i}) : a.item({i, p})) * (tb ? b.item({j, p}) : b.item({p, j}));
      expected.set({i, j}, alpha * acc + beta * c.item({i, j}));
    }
  Tensor da = gpu(a), db = gpu(b), dc = gpu(c);
  if (dtype == DType::f32)
    cuda::gemm<float>(ta, tb, m, n, k, alpha, da.data<float>(), a_cols + pad, db.data<float>(), b_cols + pad, beta,
                      dc.data<float>(), n + pad);
  else
    cuda::gemm<bf16>(ta, tb, m, n, k, alpha, da.data<bf16>(), a_cols + pad, db.data<bf16>(), b_cols + pad, beta,
                     dc.data<bf16>(), n + pad);
  Tensor got = host(dc).to(DType::f32);
  // Compare the whole padded C: the padding columns must be untouched (they equal c's there).
  double err = relative_error(got, expected);
  EXPECT_LT(err, tol_for(dtype)) << "ta=" << ta << " tb=" << tb << " m=" << m << " n=" << n << " k=" << k;
}

}  // namespace

TEST(CudaGemm, F32AllTransposesMatchCpu) {
  HSA_REQUIRE_GPU();
  uint64_t seed = 1;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) check_gemm(DType::f32, ta, tb, 37, 53, 129, 1.f, 0.f, seed += 3);
}

TEST(CudaGemm, Bf16AllTransposesMatchCpu) {
  HSA_REQUIRE_GPU();
  uint64_t seed = 100;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) check_gemm(DType::bf16, ta, tb, 65, 31, 77, 1.f, 0.f, seed += 3);
}

TEST(CudaGemm, AlphaBetaAndTinyShapes) {
  HSA_REQUIRE_GPU();
  check_gemm(DType::f32, false, true, 9, 13, 5, 0.5f, 2.f, 7);
  check_gemm(DType::f32, false, false, 1, 1, 1, 1.f, 0.f, 8);
  check_gemm(DType::f32, true, false, 1, 300, 2, 1.f, 1.f, 9);
  check_gemm(DType::f32, false, true, 4, 6, 0, 1.f, 0.5f, 10);  // empty inner dimension: C = beta C
  check_gemm(DType::bf16, false, true, 4, 6, 0, 1.f, 0.f, 11);
}

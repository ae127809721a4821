// cuda::grouped_gemm_rows / grouped_gemm_k (group sizes in device memory) against cpu::gemm run per group: every
// operand layout the MoE op uses, empty / one-row / odd-sized groups, sizes that are no multiple of any tile, row
// strides with and without 16-byte alignment (the cp.async and the per-element load paths), beta 0 (C poisoned
// with NaN: it must not be read) and beta 1.
#include "cpu/gemm.h"
#include "cuda/grouped_gemm.h"
#include "gpu/parity.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace hsa;
using namespace hsa::testing;

namespace {

// Group row counts -> offsets [G + 1] starting at `first`.
std::vector<int32_t> offsets_of(const std::vector<int32_t>& rows, int32_t first) {
  std::vector<int32_t> offsets{first};
  for (int32_t r : rows) offsets.push_back(offsets.back() + r);
  return offsets;
}

template <class Fn> void with_storage(DType dtype, Fn&& fn) {
  if (dtype == DType::f32)
    fn.template operator()<float>();
  else
    fn.template operator()<bf16>();
}

// C on the device for a call with this beta: the host values for beta = 1; for beta = 0 a block carved from the
// poisoned (NaN) cache, so a kernel that reads C or leaves an element of a group's tile unwritten fails.
Tensor device_c(const Tensor& c_host, float beta) {
  if (beta != 0.f) return gpu(c_host);
  poison_outputs({c_host.nbytes()});
  return Tensor::empty(c_host.shape(), c_host.dtype(), Device::cuda);
}

// Relative error by norm over the region the call defines: all of C for beta = 1 (so rows and padding columns
// outside every group must keep their values), the groups' [rows, cols) block for beta = 0.
void expect_close(const Tensor& got_device, const Tensor& expected, DType dtype, float beta, int64_t row0,
                  int64_t rows, int64_t cols, const std::string& what) {
  Tensor got = host(got_device).to(DType::f32);
  if (beta == 0.f) {
    got = got.slice(0, row0, row0 + rows).slice(1, 0, cols).contiguous();
    Tensor want = expected.slice(0, row0, row0 + rows).slice(1, 0, cols).contiguous();
    double err = relative_error(got, want);
    EXPECT_LT(err, tol_for(dtype)) << what << ": relative error " << err;
    return;
  }
  double err = relative_error(got, expected);
  EXPECT_LT(err, tol_for(dtype)) << what << ": relative error " << err;
}

struct RowsCase {
  std::vector<int32_t> rows;  // per group
  int64_t n = 40, k = 48;
  bool trans_b = true;
  float beta = 0.f;
  int64_t pad = 0;  // extra columns on every stored matrix (3: no 16-byte alignment)
};

std::string describe(const RowsCase& c, DType dtype) {
  return fmt::format("rows {} G={} n={} k={} trans_b={} beta={} pad={}", dtype_name(dtype), c.rows.size(), c.n, c.k,
                     c.trans_b, c.beta, c.pad);
}

// C[r, :n] = A[r, :k] op(B_g) + beta C[r, :n] for the rows of each group; two rows before the first group and one
// after the last belong to none.
void check_rows(const RowsCase& c, DType dtype, uint64_t seed) {
  SCOPED_TRACE(describe(c, dtype));
  const int64_t groups = int64_t(c.rows.size()), lead = 2, tail = 1;
  const std::vector<int32_t> offsets = offsets_of(c.rows, int32_t(lead));
  const int64_t grouped = offsets.back() - lead, total = lead + grouped + tail;
  const int64_t lda = c.k + c.pad, ldc = c.n + c.pad;
  const int64_t b_rows = c.trans_b ? c.n : c.k, ldb = (c.trans_b ? c.k : c.n) + c.pad;
  const int64_t b_stride = b_rows * ldb + c.pad;  // groups' matrices not back to back when padded
  Tensor a = random_input({total, lda}, seed, dtype), b = random_input({groups * b_stride + 1}, seed + 1, dtype),
         c0 = random_input({total, ldc}, seed + 2, dtype);

  // The reference on the values the GPU sees, in f32, one cpu::gemm per group.
  Tensor af = a.to(DType::f32).contiguous(), bf = b.to(DType::f32).contiguous();
  Tensor expected = c0.to(DType::f32).clone();
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t r0 = offsets[g], rows = c.rows[g];
    if (rows == 0) continue;
    cpu::gemm<float>(false, c.trans_b, rows, c.n, c.k, 1.f, af.data<float>() + r0 * lda, lda,
                     bf.data<float>() + g * b_stride, ldb, c.beta, expected.data<float>() + r0 * ldc, ldc);
  }

  Tensor da = gpu(a), db = gpu(b), doff = gpu(Tensor::from_i32(offsets, {groups + 1}));
  Tensor dc = device_c(c0, c.beta);
  with_storage(dtype, [&]<class T>() {
    cuda::grouped_gemm_rows<T>(doff.data<int32_t>(), groups, grouped, c.n, c.k, da.data<T>(), lda, db.data<T>(), ldb,
                               b_stride, c.trans_b, c.beta, dc.data<T>(), ldc);
  });
  expect_close(dc, expected, dtype, c.beta, lead, grouped, c.n, "C");
}

struct KCase {
  std::vector<int32_t> rows;  // per group: the reduction length
  int64_t m = 40, n = 48;
  float beta = 0.f;
  int64_t pad = 0;
  int splits = 0;  // blocks per group's reduction; 0: the library's choice
};

std::string describe(const KCase& c, DType dtype) {
  return fmt::format("k-grouped {} G={} m={} n={} beta={} pad={} splits={}", dtype_name(dtype), c.rows.size(), c.m,
                     c.n, c.beta, c.pad, c.splits);
}

// C_g = A[rows_g, :m]^T B[rows_g, :n] + beta C_g, C = [G, m, n + pad] viewed as [G * m, n + pad].
void check_k(const KCase& c, DType dtype, uint64_t seed) {
  SCOPED_TRACE(describe(c, dtype));
  const int64_t groups = int64_t(c.rows.size());
  const std::vector<int32_t> offsets = offsets_of(c.rows, 1);  // row 0 belongs to no group
  const int64_t total = offsets.back() + 1;
  const int64_t lda = c.m + c.pad, ldb = c.n + c.pad, ldc = c.n + c.pad, c_stride = c.m * ldc;
  Tensor a = random_input({total, lda}, seed, dtype), b = random_input({total, ldb}, seed + 1, dtype),
         c0 = random_input({groups * c.m, ldc}, seed + 2, dtype);

  Tensor af = a.to(DType::f32).contiguous(), bf = b.to(DType::f32).contiguous();
  Tensor expected = c0.to(DType::f32).clone();
  for (int64_t g = 0; g < groups; ++g) {
    float* cg = expected.data<float>() + g * c_stride;
    if (c.rows[g] == 0) {  // beta * C_g
      for (int64_t i = 0; i < c.m * ldc; ++i)
        if (i % ldc < c.n) cg[i] *= c.beta;
      continue;
    }
    cpu::gemm<float>(true, false, c.m, c.n, c.rows[g], 1.f, af.data<float>() + offsets[g] * lda, lda,
                     bf.data<float>() + offsets[g] * ldb, ldb, c.beta, cg, ldc);
  }

  Tensor da = gpu(a), db = gpu(b), doff = gpu(Tensor::from_i32(offsets, {groups + 1}));
  Tensor dc = device_c(c0, c.beta);
  auto run = [&](Tensor& out) {
    with_storage(dtype, [&]<class T>() {
      cuda::grouped_gemm_k<T>(doff.data<int32_t>(), groups, c.m, c.n, da.data<T>(), lda, db.data<T>(), ldb, c.beta,
                              out.data<T>(), ldc, c_stride, c.splits);
    });
  };
  run(dc);
  expect_close(dc, expected, dtype, c.beta, 0, groups * c.m, c.n, "C");

  // The same bits on a second run (the split partials are summed in a fixed order, no atomics).
  Tensor again = gpu(c0);
  if (c.beta == 0.f) again = gpu(host(dc));  // start from the first result: only the groups' blocks are rewritten
  run(again);
  Tensor first = host(dc).to(DType::f32).contiguous(), second = host(again).to(DType::f32).contiguous();
  int64_t differing = 0;
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < c.m * ldc; ++i)
      if (i % ldc < c.n) {
        const float x = first.data<float>()[g * c_stride + i], y = second.data<float>()[g * c_stride + i];
        differing += std::memcmp(&x, &y, sizeof(float)) != 0;
      }
  EXPECT_EQ(differing, 0) << "elements differing between two identical runs";
}

// Empty groups first, last and in between, a one-row group, groups that are no multiple of any tile and one
// spanning several 128-row tiles.
const std::vector<int32_t> kMixedRows = {0, 1, 37, 0, 130, 5, 64, 0};

// The MoE uses of the row form: gate/up/down forward (trans_b), dh = dy w_down and dx = dg W_gate + du W_up (no
// trans_b, beta 1 for the second term); aligned (pad 0) and unaligned (pad 3) row strides.
void rows_sweep(DType dtype, uint64_t seed) {
  for (bool trans_b : {true, false})
    for (float beta : {0.f, 1.f})
      for (int64_t pad : {0, 3}) check_rows({kMixedRows, 40, 48, trans_b, beta, pad}, dtype, seed += 3);
}

// The k form: dW_gate = dg^T x ([F, dm]) and dW_down = dy^T h ([dm, F]) per expert; an expert without rows gets
// beta * C.
void k_sweep(DType dtype, uint64_t seed) {
  for (float beta : {0.f, 1.f})
    for (int64_t pad : {0, 3}) {
      check_k({kMixedRows, 40, 48, beta, pad}, dtype, seed += 3);
      check_k({kMixedRows, 48, 40, beta, pad}, dtype, seed += 3);
    }
}

}  // namespace

TEST(GroupedGemmParity, RowsF32) {
  HSA_REQUIRE_GPU();
  rows_sweep(DType::f32, 1);
}

TEST(GroupedGemmParity, RowsBf16) {
  HSA_REQUIRE_GPU();
  rows_sweep(DType::bf16, 100);
}

TEST(GroupedGemmParity, KGroupedF32) {
  HSA_REQUIRE_GPU();
  k_sweep(DType::f32, 200);
}

TEST(GroupedGemmParity, KGroupedBf16) {
  HSA_REQUIRE_GPU();
  k_sweep(DType::bf16, 300);
}

// Several tiles in every dimension (M, N and the K pipeline) with 16-byte aligned rows, then widths that are no
// multiple of 8 (the per-element load path).
TEST(GroupedGemmParity, LargeAndOddShapes) {
  HSA_REQUIRE_GPU();
  uint64_t seed = 400;
  for (DType dtype : {DType::f32, DType::bf16}) {
    check_rows({{300, 0, 129}, 200, 296, true, 0.f, 0}, dtype, seed += 3);
    check_rows({{300, 0, 129}, 200, 296, false, 1.f, 0}, dtype, seed += 3);
    check_rows({{17, 1, 0, 66}, 33, 21, true, 0.f, 0}, dtype, seed += 3);
    check_rows({{17, 1, 0, 66}, 21, 33, false, 1.f, 0}, dtype, seed += 3);
    check_k({{300, 0, 1, 77}, 200, 136, 0.f, 0}, dtype, seed += 3);
    check_k({{300, 0, 1, 77}, 33, 21, 1.f, 0}, dtype, seed += 3);
  }
}

// More groups than the tile plan's block (256) and every group tiny: the plan's carry and the binary search.
TEST(GroupedGemmParity, ManyGroups) {
  HSA_REQUIRE_GPU();
  std::vector<int32_t> rows(300);
  for (size_t g = 0; g < rows.size(); ++g) rows[g] = int32_t((g * 7) % 5);  // 0..4
  uint64_t seed = 500;
  for (DType dtype : {DType::f32, DType::bf16}) {
    check_rows({rows, 24, 16, true, 0.f, 0}, dtype, seed += 3);
    check_k({rows, 16, 24, 0.f, 0}, dtype, seed += 3);
  }
}

// No group has rows: the row form writes nothing, the k form writes beta * C (zeros for beta = 0).
TEST(GroupedGemmParity, AllGroupsEmpty) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16}) {
    check_rows({{0, 0, 0}, 40, 48, true, 1.f, 0}, dtype, 600);
    check_k({{0, 0, 0}, 40, 48, 0.f, 0}, dtype, 601);
    check_k({{0, 0}, 40, 48, 1.f, 3}, dtype, 602);
  }
}

// The split reduction of the k form: one split (direct stores), 2 and 3 splits, and 16, more than some groups have
// BK slices (splits left empty, a group with fewer rows than one split), with empty groups first, in between and
// last; beta 0 and 1, paired (pad 0) and per-element (pad 3) stores of C.
TEST(GroupedGemmParity, KGroupedSplits) {
  HSA_REQUIRE_GPU();
  const std::vector<int32_t> rows = {0, 5, 40, 0, 700, 1, 0};
  uint64_t seed = 700;
  for (DType dtype : {DType::f32, DType::bf16})
    for (int splits : {1, 2, 3, 16})
      for (float beta : {0.f, 1.f})
        for (int64_t pad : {0, 3}) check_k({rows, 200, 136, beta, pad, splits}, dtype, seed += 3);
  // Every group shorter than one slice of every split but the first.
  for (DType dtype : {DType::f32, DType::bf16}) check_k({{3, 0, 7}, 40, 48, 1.f, 0, 16}, dtype, seed += 3);
}

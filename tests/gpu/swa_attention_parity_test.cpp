// CUDA sliding-window attention against the CPU op, forward and backward.
//   q, out, dout, dq [B, Lq, HQ, D]; k, v, dk, dv [B, Lk, H, D]; lse [B, Lq, HQ].
// The kernels are called on output buffers filled with NaN first, so an element they fail to write shows up.
// Inputs are random; bf16 cases compare against the CPU op in f32 on the same bf16-rounded inputs. Tolerances are
// relative errors in norm: f32 1e-5 (both sides accumulate in f32, in different orders and tile sizes), bf16 1e-2.
#include "cpu/swa_attention.h"
#include "cuda/runtime.h"
#include "cuda/swa_attention.h"
#include "ops/swa_attention.h"

#include <hsa/random.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

using namespace hsa;

namespace {

struct Case {
  const char* name;
  int64_t batch, q_len, k_len, q_heads, kv_heads, dim;
  int64_t window, q_start, k_start;
};

// Not multiples of the 64-row tiles; windows of 1, shorter and longer than L; GQA 1, 4, 16; decode and chunked
// prefill offsets; rows that see no key at all. bf16 runs the register kernels (rows of a KV group = token x head,
// 128 per block; key tiles of 64; dk/dv blocks of 128 keys, row tiles of 64): the GQA 6 cases put tokens across
// block and tile edges, windows of exactly one and two key tiles, longer than the 128-key dk/dv block and than L.
const std::vector<Case> kCases = {
    {"L37_w8_gqa4_d64", 1, 37, 37, 4, 1, 64, 8, 0, 0},
    {"L37_w1_gqa4_d64", 2, 37, 37, 4, 1, 64, 1, 0, 0},
    {"L37_wide_gqa1_d32", 1, 37, 37, 2, 2, 32, 100, 0, 0},
    {"L1000_w300_gqa16_d128", 1, 1000, 1000, 16, 1, 128, 300, 0, 0},
    {"L1000_wide_gqa1_d64", 2, 1000, 1000, 4, 4, 64, 2000, 0, 0},
    {"L1000_w64_gqa4_d32", 1, 1000, 1000, 8, 2, 32, 64, 0, 0},
    {"decode_gqa16_d128", 2, 1, 100, 16, 1, 128, 64, 599, 500},
    {"decode_sees_nothing", 1, 1, 100, 16, 1, 128, 8, 900, 500},
    {"chunk_prefill_gqa4_d64", 1, 37, 137, 8, 2, 64, 50, 100, 0},
    {"keys_after_queries", 2, 37, 37, 4, 2, 64, 10, 0, 20},
    {"L130_w65_gqa4_d128", 1, 130, 130, 4, 1, 128, 65, 0, 0},
    {"L64_w64_gqa4_d64", 1, 64, 64, 8, 2, 64, 64, 0, 0},
    {"L77_w17_gqa1_d128", 2, 77, 77, 3, 3, 128, 17, 0, 0},
    {"L300_w64_gqa6_d64", 2, 300, 300, 12, 2, 64, 64, 0, 0},
    {"L200_w128_gqa6_d128", 1, 200, 200, 6, 1, 128, 128, 0, 0},
    {"L333_wide_gqa6_d32", 2, 333, 333, 12, 2, 32, 1000, 0, 0},
    {"L1100_w512_gqa6_d64", 1, 1100, 1100, 12, 2, 64, 512, 0, 0},  // a base-100m layer, shorter
    {"prefill_cache_gqa6_d64", 2, 70, 333, 6, 1, 64, 200, 263, 0},  // 70 new tokens after 263 cached ones
    {"prefill_cache_gqa6_d128", 1, 150, 400, 12, 2, 128, 300, 250, 0},
    {"decode_gqa6_d32", 3, 1, 257, 12, 2, 32, 100, 256, 0},
};

// Test names and failure messages show the case by name.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

bool have_gpu() { return cuda::device_count() > 0; }

Tensor nan_tensor(const Shape& shape, DType dtype) {
  return Tensor::full(shape, std::numeric_limits<double>::quiet_NaN(), dtype).to(Device::cuda);
}

// ||a - b|| / ||b|| (or ||a - b|| when b is zero) over entries where b is finite; a and b on the CPU. Also counts
// entries of a that are NaN, and entries where exactly one side is infinite.
struct Diff {
  double rel = 0;
  int64_t nan = 0, inf_mismatch = 0;
};
// floor: a lower bound on the norm the error is measured against, for references that vanish by construction.
Diff compare(const Tensor& a_in, const Tensor& b_in, double floor = 0) {
  std::vector<double> a = a_in.to(Device::cpu).to_vector(), b = b_in.to(Device::cpu).to_vector();
  EXPECT_EQ(a.size(), b.size());
  Diff d;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (std::isnan(a[i])) {
      ++d.nan;
      continue;
    }
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      if (a[i] != b[i]) ++d.inf_mismatch;
      continue;
    }
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  den = std::max(den, floor * floor);
  d.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return d;
}

double norm(const Tensor& t) {
  double s = 0;
  for (double x : t.to(Device::cpu).to_vector()) s += x * x;
  return std::sqrt(s);
}

void expect_close(const char* what, const Tensor& gpu, const Tensor& ref, double tol, double floor = 0) {
  Diff d = compare(gpu, ref, floor);
  EXPECT_EQ(d.nan, 0) << what << ": NaN entries (unwritten or poisoned)";
  EXPECT_EQ(d.inf_mismatch, 0) << what << ": -inf pattern differs from the CPU";
  EXPECT_LT(d.rel, tol) << what << ": relative error in norm";
}

class SwaParity : public ::testing::TestWithParam<std::tuple<Case, DType>> {};

TEST_P(SwaParity, ForwardBackwardMatchCpuOnPoisonedOutputs) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const Case c = std::get<0>(GetParam());
  const DType dtype = std::get<1>(GetParam());
  const double tol = dtype == DType::f32 ? 1e-5 : 1e-2;
  const Shape qs{c.batch, c.q_len, c.q_heads, c.dim}, ks{c.batch, c.k_len, c.kv_heads, c.dim};
  const uint64_t seed = uint64_t(c.q_len * 131 + c.window * 7 + c.q_heads);
  // Inputs in the storage dtype; the reference sees exactly the same (rounded) values in f32.
  Tensor q = randn(qs, seed + 1, 1.5, dtype), k = randn(ks, seed + 2, 1.5, dtype), v = randn(ks, seed + 3, 1.0, dtype),
         dout = randn(qs, seed + 4, 1.0, dtype);
  const ops::SwaParams p{c.window, 1.0 / std::sqrt(double(c.dim)), c.q_start, c.k_start};
  const Tensor qf = q.to(DType::f32), kf = k.to(DType::f32), vf = v.to(DType::f32), df = dout.to(DType::f32);
  const ops::SwaOut ref = ops::swa_forward(qf, kf, vf, p);
  const ops::SwaGrads ref_g = ops::swa_backward(df, qf, kf, vf, ref, p);

  Tensor qd = q.to(Device::cuda), kd = k.to(Device::cuda), vd = v.to(Device::cuda), dd = dout.to(Device::cuda);
  Tensor out = nan_tensor(qs, dtype), lse = nan_tensor({c.batch, c.q_len, c.q_heads}, DType::f32);
  Tensor delta = nan_tensor({c.batch, c.q_len, c.q_heads}, DType::f32);
  Tensor dq = nan_tensor(qs, dtype), dk = nan_tensor(ks, dtype), dv = nan_tensor(ks, dtype);
  const SwaDims dims{c.batch, c.q_len, c.k_len, c.q_heads, c.kv_heads, c.dim, c.window, c.q_start, c.k_start};
  auto run = [&]<class T>() {
    cuda::swa_forward<T>(qd.data<T>(), kd.data<T>(), vd.data<T>(), out.data<T>(), lse.data<float>(), dims, p.scale);
    cuda::swa_backward<T>(dd.data<T>(), qd.data<T>(), kd.data<T>(), vd.data<T>(), out.data<T>(), lse.data<float>(),
                          delta.data<float>(), dq.data<T>(), dk.data<T>(), dv.data<T>(), dims, p.scale);
  };
  if (dtype == DType::f32)
    run.operator()<float>();
  else
    run.operator()<bf16>();
  cuda::synchronize();

  expect_close("out", out.to(Device::cpu).to(DType::f32), ref.out, tol);
  expect_close("lse", lse, ref.lse, tol);
  // With window 1 every row sees only its own key: P = 1 and dS = dP - rowsum(dout * out) = 0 exactly, so dq and dk
  // are rounding noise on both sides. They are measured against the size of dv (they must be ~0 next to it).
  const double floor = c.window == 1 ? norm(ref_g.dv) : 0.0;
  expect_close("dq", dq.to(Device::cpu).to(DType::f32), ref_g.dq, tol, floor);
  expect_close("dk", dk.to(Device::cpu).to(DType::f32), ref_g.dk, tol, floor);
  expect_close("dv", dv.to(Device::cpu).to(DType::f32), ref_g.dv, tol);
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<Case, DType>>& info) {
  return std::string(std::get<0>(info.param).name) + "_" + std::string(dtype_name(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, SwaParity,
                         ::testing::Combine(::testing::ValuesIn(kCases), ::testing::Values(DType::f32, DType::bf16)),
                         case_name);

// Rows that see no key: zeros and lse = -inf exactly, and a backward without NaN (dk, dv zero for unseen keys).
TEST(SwaCuda, RowsWithoutKeysGiveZerosAndNoNan) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const ops::SwaParams p{4, 0.125, 0, 50};  // every query position is before every key
  for (DType dtype : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    auto input = [&](const Shape& shape, uint64_t seed) { return randn(shape, seed, 1.0, dtype).to(Device::cuda); };
    Tensor q = input({1, 20, 4, 64}, 1), k = input({1, 30, 2, 64}, 2), v = input({1, 30, 2, 64}, 3),
           dout = input({1, 20, 4, 64}, 4);
    const ops::SwaOut fwd = ops::swa_forward(q, k, v, p);
    const ops::SwaGrads g = ops::swa_backward(dout, q, k, v, fwd, p);
    for (double x : fwd.out.to(Device::cpu).to_vector()) ASSERT_EQ(x, 0.0);
    for (double x : fwd.lse.to(Device::cpu).to_vector()) ASSERT_EQ(x, -std::numeric_limits<double>::infinity());
    for (const Tensor* t : {&g.dq, &g.dk, &g.dv})
      for (double x : t->to(Device::cpu).to_vector()) ASSERT_EQ(x, 0.0);
  }
}

// The bf16 backward sums the G heads of a KV group in a fixed order, without atomics: two runs agree bit for bit.
TEST(SwaCuda, Bf16BackwardIsDeterministic) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const ops::SwaParams p{100, 0.125, 0, 0};
  auto input = [](const Shape& shape, uint64_t seed) { return randn(shape, seed, 1.0, DType::bf16).to(Device::cuda); };
  Tensor q = input({2, 300, 12, 64}, 21), k = input({2, 300, 2, 64}, 22), v = input({2, 300, 2, 64}, 23),
         dout = input({2, 300, 12, 64}, 24);
  const ops::SwaOut fwd = ops::swa_forward(q, k, v, p);
  const ops::SwaGrads a = ops::swa_backward(dout, q, k, v, fwd, p), b = ops::swa_backward(dout, q, k, v, fwd, p);
  EXPECT_EQ(a.dq.to(Device::cpu).to_vector(), b.dq.to(Device::cpu).to_vector());
  EXPECT_EQ(a.dk.to(Device::cpu).to_vector(), b.dk.to(Device::cpu).to_vector());
  EXPECT_EQ(a.dv.to(Device::cpu).to_vector(), b.dv.to(Device::cpu).to_vector());
}

// The op layer dispatches Device::cuda tensors to the kernels: same results as the CPU op, outputs on the device.
TEST(SwaCuda, OpDispatchMatchesCpu) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const ops::SwaParams p{33, 0.125, 3, 0};
  for (DType dtype : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    const double tol = dtype == DType::f32 ? 1e-5 : 1e-2;
    Tensor q = randn({2, 70, 8, 64}, 11, 1.0, dtype), k = randn({2, 73, 2, 64}, 12, 1.0, dtype),
           v = randn({2, 73, 2, 64}, 13, 1.0, dtype), dout = randn({2, 70, 8, 64}, 14, 1.0, dtype);
    const ops::SwaOut ref = ops::swa_forward(q, k, v, p);
    const ops::SwaGrads ref_g = ops::swa_backward(dout, q, k, v, ref, p);
    const ops::SwaOut fwd = ops::swa_forward(q.to(Device::cuda), k.to(Device::cuda), v.to(Device::cuda), p);
    ASSERT_EQ(fwd.out.device(), Device::cuda);
    ASSERT_EQ(fwd.out.dtype(), dtype);
    ASSERT_EQ(fwd.lse.dtype(), DType::f32);
    const ops::SwaGrads g =
        ops::swa_backward(dout.to(Device::cuda), q.to(Device::cuda), k.to(Device::cuda), v.to(Device::cuda), fwd, p);
    ASSERT_EQ(g.dk.device(), Device::cuda);
    ASSERT_EQ(g.dk.dtype(), dtype);
    auto f32 = [](const Tensor& t) { return t.to(Device::cpu).to(DType::f32); };
    expect_close("out", f32(fwd.out), f32(ref.out), tol);
    expect_close("lse", f32(fwd.lse), f32(ref.lse), tol);
    expect_close("dq", f32(g.dq), f32(ref_g.dq), tol);
    expect_close("dk", f32(g.dk), f32(ref_g.dk), tol);
    expect_close("dv", f32(g.dv), f32(ref_g.dv), tol);
  }
}

TEST(SwaCuda, RejectsWhatTheKernelsDoNotCover) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const ops::SwaParams p{8, 0.125};
  auto expect_error = [](auto&& fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "expected an error mentioning '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  Tensor q48 = randn({1, 5, 2, 48}, 1).to(Device::cuda), k48 = randn({1, 5, 1, 48}, 2).to(Device::cuda);
  expect_error([&] { ops::swa_forward(q48, k48, k48, p); }, "head dim");
  Tensor q64 = randn({1, 5, 2, 64}, 1, 1.0, DType::f64).to(Device::cuda),
         k64 = randn({1, 5, 1, 64}, 2, 1.0, DType::f64).to(Device::cuda);
  expect_error([&] { ops::swa_forward(q64, k64, k64, p); }, "f64");
  Tensor qc = randn({1, 5, 2, 64}, 1), kd = randn({1, 5, 1, 64}, 2).to(Device::cuda);
  expect_error([&] { ops::swa_forward(qc, kd, kd, p); }, "cuda");
}

}  // namespace

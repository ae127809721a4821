// CUDA HSA chunk attention against the CPU op: forward (out, lse) and backward (dq, dmem_k, dmem_v, dweights),
// f32 and bf16, fresh random inputs, outputs poisoned with NaN before each kernel call, awkward shapes.
// Relative error by norm: f32 < 1e-5, bf16 < 1e-2.
#include "cuda/hsa_attention.h"
#include "cuda/runtime.h"
#include "ops/hsa_attention.h"

#include <hsa/random.h>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

using namespace hsa;

namespace {

struct Case {
  int64_t B, L, HQ, H, D, S, K, C;
  int64_t used_chunks;  // indices drawn from [0, used_chunks): chunks above get no token (zero dK/dV)
  int mode;             // 0: random with ~25% empty slots and duplicates; 1: causal (t < S has none);
                        // 2: every token picks chunk 0 in slot 0 (one huge item: many tiles and splits)
};

Tensor make_indices(const Case& c, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> idx;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t t = 0; t < c.L; ++t)
      for (int64_t r = 0; r < c.H; ++r)
        for (int64_t i = 0; i < c.K; ++i) {
          int32_t v = -1;
          if (c.mode == 0) {
            if (t % 7 != 3 && rng.uniform() > 0.25) v = int32_t(rng.below(uint64_t(c.used_chunks)));
          } else if (c.mode == 1) {
            int64_t complete = std::min(t / c.S, c.used_chunks);
            if (i < complete) v = int32_t(rng.below(uint64_t(complete)));
          } else {
            v = i == 0 ? 0 : int32_t(rng.below(uint64_t(c.used_chunks)));
          }
          idx.push_back(v);
        }
  return Tensor::from_i32(idx, {c.B, c.L, c.H, c.K});
}

// ||a - b|| / ||b|| over the finite entries of b; an entry finite in one and not the other counts as a failure.
double rel_err(const Tensor& gpu, const Tensor& cpu) {
  std::vector<double> a = gpu.to(Device::cpu).to_vector(), b = cpu.to_vector();
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(b[i]) || !std::isfinite(a[i])) {
      if (std::isfinite(b[i]) != std::isfinite(a[i]) || a[i] != b[i]) return std::numeric_limits<double>::infinity();
      continue;
    }
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

Tensor poisoned(const Shape& shape, DType dtype) {
  return Tensor::full(shape, std::numeric_limits<double>::quiet_NaN(), dtype).to(Device::cuda);
}

void run_case(const Case& c, DType dtype, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "B=" << c.B << " L=" << c.L << " HQ=" << c.HQ << " H=" << c.H << " D=" << c.D
                                    << " S=" << c.S << " K=" << c.K << " C=" << c.C << " mode=" << c.mode << " "
                                    << dtype_name(dtype));
  const double tol = dtype == DType::f32 ? 1e-5 : 1e-2, scale = 1.0 / std::sqrt(double(c.D));
  Tensor q = randn({c.B, c.L, c.HQ, c.D}, seed, 1.0, dtype);
  Tensor k = randn({c.B, c.C, c.S, c.H, c.D}, seed + 1, 1.0, dtype);
  Tensor v = randn({c.B, c.C, c.S, c.H, c.D}, seed + 2, 1.0, dtype);
  Tensor w = rand_uniform({c.B, c.L, c.H, c.K}, seed + 3, 0.0, 1.0);
  Tensor dout = randn({c.B, c.L, c.HQ, c.D}, seed + 4, 1.0, dtype);
  Tensor idx = make_indices(c, seed + 5);
  ops::HsaOut ref = ops::hsa_attention_forward(q, k, v, idx, w, scale);
  ops::HsaGrads gref = ops::hsa_attention_backward(dout, q, k, v, idx, w, ref, scale);

  Tensor qd = q.to(Device::cuda), kd = k.to(Device::cuda), vd = v.to(Device::cuda), wd = w.to(Device::cuda),
         dd = dout.to(Device::cuda), id = idx.to(Device::cuda);
  cpu::HsaDims d{c.B, c.L, c.HQ, c.H, c.D, c.C, c.S, c.K};
  // Kernel level, outputs poisoned.
  ops::HsaOut out{poisoned(q.shape(), dtype), poisoned({c.B, c.L, c.HQ, c.K}, DType::f32)};
  cuda::IndexError bad = cuda::hsa_attention_forward(dtype, qd.raw_data(), kd.raw_data(), vd.raw_data(),
                                                     id.data<int32_t>(), wd.data<float>(), scale, d,
                                                     out.out.raw_data(), out.lse.data<float>());
  ASSERT_EQ(bad.flat, -1);
  EXPECT_LT(rel_err(out.out, ref.out), tol) << "out";
  EXPECT_LT(rel_err(out.lse, ref.lse), dtype == DType::f32 ? 1e-5 : 1e-2) << "lse";
  ops::HsaGrads g{poisoned(q.shape(), dtype), poisoned(k.shape(), dtype), poisoned(v.shape(), dtype),
                  poisoned(w.shape(), DType::f32)};
  bad = cuda::hsa_attention_backward(dtype, dd.raw_data(), qd.raw_data(), kd.raw_data(), vd.raw_data(),
                                     id.data<int32_t>(), wd.data<float>(), out.lse.data<float>(), scale, d,
                                     g.dq.raw_data(), g.dmem_k.raw_data(), g.dmem_v.raw_data(),
                                     g.dweights.data<float>());
  ASSERT_EQ(bad.flat, -1);
  EXPECT_LT(rel_err(g.dq, gref.dq), tol) << "dq";
  EXPECT_LT(rel_err(g.dmem_k, gref.dmem_k), tol) << "dmem_k";
  EXPECT_LT(rel_err(g.dmem_v, gref.dmem_v), tol) << "dmem_v";
  EXPECT_LT(rel_err(g.dweights, gref.dweights), tol) << "dweights";
  // Op level (the dispatch): same results as the kernel call, bit for bit (deterministic kernels).
  ops::HsaOut op_out = ops::hsa_attention_forward(qd, kd, vd, id, wd, scale);
  EXPECT_EQ(op_out.out.device(), Device::cuda);
  EXPECT_EQ(rel_err(op_out.out, out.out), 0.0) << "op out vs kernel out (determinism)";
  ops::HsaGrads op_g = ops::hsa_attention_backward(dd, qd, kd, vd, id, wd, op_out, scale);
  EXPECT_EQ(rel_err(op_g.dmem_k, g.dmem_k), 0.0) << "op dmem_k vs kernel (determinism)";
  EXPECT_EQ(rel_err(op_g.dq, g.dq), 0.0) << "op dq vs kernel (determinism)";
}

class HsaAttentionParity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

const std::vector<Case> kCases = {
    {2, 37, 4, 2, 32, 16, 3, 5, 5, 0},     // GQA 2, empty slots, duplicates, L not a tile multiple
    {1, 45, 16, 1, 64, 32, 4, 3, 3, 1},    // GQA 16, causal: t < S empty, fewer chunks than K
    {1, 50, 2, 2, 128, 64, 2, 4, 4, 0},    // GQA 1, D = 128, S = 64
    {1, 29, 6, 2, 16, 16, 5, 9, 6, 0},     // GQA 3 (entries do not fill a tile), chunks 6..8 never chosen
    {1, 300, 4, 1, 64, 16, 2, 4, 4, 2},    // one chunk chosen by every token: many tiles, split blocks
    {1, 700, 16, 1, 128, 64, 8, 10, 10, 1},  // the benchmark head shape (GQA 16, D = 128, S = 64), causal
    {1, 600, 16, 1, 128, 64, 4, 9, 9, 2},    // benchmark head shape, chunk 0 everywhere: split backward blocks
    // The decode path (B*L <= cuda::kDecodeTokens): one token, a few, GQA 3, the benchmark's head shape.
    {1, 1, 16, 1, 128, 64, 8, 20, 20, 0},
    {2, 3, 4, 2, 32, 16, 3, 5, 5, 0},
    {1, 5, 6, 2, 16, 16, 5, 9, 6, 1},
    {4, 4, 8, 2, 64, 32, 4, 7, 7, 0},
};

TEST_F(HsaAttentionParity, F32MatchesCpu) {
  uint64_t seed = 100;
  for (const Case& c : kCases) run_case(c, DType::f32, seed += 10);
}

TEST_F(HsaAttentionParity, Bf16MatchesCpu) {
  uint64_t seed = 200;
  for (const Case& c : kCases) run_case(c, DType::bf16, seed += 10);
}

TEST_F(HsaAttentionParity, BadIndexIsReportedWithoutReadingDeviceMemoryOnHost) {
  Case c{1, 8, 2, 1, 32, 16, 2, 3, 3, 0};
  Tensor q = randn({1, 8, 2, 32}, 1).to(Device::cuda), k = randn({1, 3, 16, 1, 32}, 2).to(Device::cuda);
  Tensor w = rand_uniform({1, 8, 1, 2}, 3, 0, 1).to(Device::cuda);
  Tensor idx = make_indices(c, 4);
  idx.set({0, 5, 0, 1}, 3);  // == C
  try {
    ops::hsa_attention_forward(q, k, k, idx.to(Device::cuda), w, 0.1);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("'indices'[b=0, t=5, r=0, i=1] = 3"), std::string::npos) << e.what();
  }
}

TEST_F(HsaAttentionParity, UnsupportedShapeIsAClearError) {
  Tensor q = randn({1, 4, 2, 24}, 1).to(Device::cuda), k = randn({1, 2, 16, 1, 24}, 2).to(Device::cuda);
  Tensor w = rand_uniform({1, 4, 1, 2}, 3, 0, 1).to(Device::cuda);
  Tensor idx = Tensor::from_i32(std::vector<int32_t>(8, 0), {1, 4, 1, 2}).to(Device::cuda);
  EXPECT_THROW(ops::hsa_attention_forward(q, k, k, idx, w, 0.1), std::exception);
}

}  // namespace

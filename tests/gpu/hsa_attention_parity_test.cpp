// CUDA HSA chunk attention against the CPU op: forward (out, lse) and backward (dq, dmem_k, dmem_v, dweights),
// f32 and bf16, fresh random inputs, outputs poisoned with NaN before each kernel call, awkward shapes, chunks chosen
// by every token (many split blocks), B > 1. Relative error by norm: f32 < 1e-5, bf16 < 1e-2. Bad chunk indices:
// the kernels never wait for the device, so they throw at the next cuda::synchronize(), and the bad slot is skipped.
#include "cuda/hsa_attention.h"
#include "cuda/runtime.h"
#include "ops/hsa_attention.h"

#include <hsa/error.h>
#include <hsa/random.h>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace hsa;

namespace {

struct Case {
  int64_t B, L, HQ, H, D, S, K, C;
  int64_t used_chunks;  // indices drawn from [0, used_chunks): chunks above get no token (zero dK/dV)
  int mode;             // 0: random with ~25% empty slots and duplicates; 1: causal (t < S has none);
                        // 2: every token picks chunk 0 in slot 0 (one huge item per (b, r): many tiles and splits),
                        //    the other slots random in [0, used_chunks)
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
  HsaDims d{c.B, c.L, c.HQ, c.H, c.D, c.C, c.S, c.K};
  // Kernel level, outputs poisoned.
  ops::HsaOut out{poisoned(q.shape(), dtype), poisoned({c.B, c.L, c.HQ, c.K}, DType::f32)};
  cuda::hsa_attention_forward(dtype, qd.raw_data(), kd.raw_data(), vd.raw_data(), id.data<int32_t>(),
                              wd.data<float>(), scale, d, out.out.raw_data(), out.lse.data<float>());
  ASSERT_NO_THROW(cuda::synchronize()) << "forward: no bad index, no kernel error";
  EXPECT_LT(rel_err(out.out, ref.out), tol) << "out";
  EXPECT_LT(rel_err(out.lse, ref.lse), dtype == DType::f32 ? 1e-5 : 1e-2) << "lse";
  ops::HsaGrads g{poisoned(q.shape(), dtype), poisoned(k.shape(), dtype), poisoned(v.shape(), dtype),
                  poisoned(w.shape(), DType::f32)};
  cuda::hsa_attention_backward(dtype, dd.raw_data(), qd.raw_data(), kd.raw_data(), vd.raw_data(), id.data<int32_t>(),
                               wd.data<float>(), out.lse.data<float>(), scale, d, g.dq.raw_data(),
                               g.dmem_k.raw_data(), g.dmem_v.raw_data(), g.dweights.data<float>());
  ASSERT_NO_THROW(cuda::synchronize()) << "backward: no bad index, no kernel error";
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
    // Hot chunk at a length where the split plans matter: chunk 0 gets ~1730 entries (bf16: 54 forward blocks of
    // 512 rows, 14 backward splits of 128 entries summed in split order), the others ~190 (2 splits each);
    // backward partial slots numbered by block (part_base (1, 1)).
    {1, 1536, 16, 1, 128, 64, 4, 24, 24, 2},
    // B = 2, H = 2, G = 8, hot chunk per (b, r): ~1120 entries = 5 backward splits of 256, 18 forward blocks;
    // many items with few entries (part_base (2, 0): slot ranges from begin, not from block numbers).
    {2, 1100, 16, 2, 32, 16, 2, 64, 64, 2},
    {2, 520, 16, 1, 128, 64, 8, 8, 8, 1},    // B = 2 in the benchmark head shape, causal
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

// Expects the next cuda::synchronize() to throw an error that contains every one of `parts`, then none.
void expect_error_at_sync(const std::vector<std::string>& parts) {
  try {
    cuda::synchronize();
    ADD_FAILURE() << "expected an error at cuda::synchronize()";
  } catch (const Error& e) {
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(cuda::synchronize()) << "the record is cleared once reported";
}

// Two bad indices (C = 3 at flat 11 and -5 further on): the lowest flat position is the one reported (as the CPU
// check does), and the kernels skip both slots: the results equal the CPU op's on indices with -1 there.
void run_bad_index_case(int64_t L, DType dtype) {
  SCOPED_TRACE(::testing::Message() << "L=" << L << " " << dtype_name(dtype));
  Case c{1, L, 2, 1, 32, 16, 2, 3, 3, 0};
  const double scale = 1.0 / std::sqrt(32.0);
  Tensor q = randn({1, L, 2, 32}, 1, 1.0, dtype), k = randn({1, 3, 16, 1, 32}, 2, 1.0, dtype);
  Tensor v = randn({1, 3, 16, 1, 32}, 3, 1.0, dtype), dout = randn({1, L, 2, 32}, 4, 1.0, dtype);
  Tensor w = rand_uniform({1, L, 1, 2}, 5, 0, 1);
  Tensor idx = make_indices(c, 6), skipped = idx.clone();
  idx.set({0, 5, 0, 1}, 3);  // == C: flat (5 * 1 + 0) * 2 + 1 = 11
  idx.set({0, L - 1, 0, 0}, -5);
  skipped.set({0, 5, 0, 1}, -1);
  skipped.set({0, L - 1, 0, 0}, -1);
  ops::HsaOut ref = ops::hsa_attention_forward(q, k, v, skipped, w, scale);
  ops::HsaGrads gref = ops::hsa_attention_backward(dout, q, k, v, skipped, w, ref, scale);
  Tensor qd = q.to(Device::cuda), kd = k.to(Device::cuda), vd = v.to(Device::cuda), wd = w.to(Device::cuda);
  Tensor id = idx.to(Device::cuda), dd = dout.to(Device::cuda);
  ASSERT_NO_THROW(cuda::synchronize());

  ops::HsaOut out = ops::hsa_attention_forward(qd, kd, vd, id, wd, scale);  // queued: nothing waits, no throw
  expect_error_at_sync({"hsa_attention_forward: 'indices'", "3 at flat index 11, outside [0, 3)"});
  const double tol = dtype == DType::f32 ? 1e-5 : 1e-2;
  EXPECT_LT(rel_err(out.out, ref.out), tol) << "out with the bad slots skipped";
  EXPECT_LT(rel_err(out.lse, ref.lse), tol) << "lse with the bad slots skipped (-inf there)";

  ops::HsaGrads g = ops::hsa_attention_backward(dd, qd, kd, vd, id, wd, out, scale);
  expect_error_at_sync({"hsa_attention_backward: 'indices'", "3 at flat index 11, outside [0, 3)"});
  EXPECT_LT(rel_err(g.dq, gref.dq), tol) << "dq";
  EXPECT_LT(rel_err(g.dmem_k, gref.dmem_k), tol) << "dmem_k";
  EXPECT_LT(rel_err(g.dmem_v, gref.dmem_v), tol) << "dmem_v";
  EXPECT_LT(rel_err(g.dweights, gref.dweights), tol) << "dweights (0 in the bad slots)";

  // check_input_errors() reports it too; a later call with good indices is not blamed.
  cuda::hsa_attention_forward(dtype, qd.raw_data(), kd.raw_data(), vd.raw_data(), id.data<int32_t>(),
                              wd.data<float>(), scale, HsaDims{1, L, 2, 1, 32, 3, 16, 2}, out.out.raw_data(),
                              out.lse.data<float>());
  EXPECT_THROW(cuda::check_input_errors(), Error);
  ops::hsa_attention_forward(qd, kd, vd, skipped.to(Device::cuda), wd, scale);
  EXPECT_NO_THROW(cuda::synchronize());
}

TEST_F(HsaAttentionParity, BadIndexThrowsAtTheNextSyncAndIsSkipped) {
  for (DType dtype : {DType::f32, DType::bf16}) {
    run_bad_index_case(8, dtype);   // forward on the decode path (B * L <= kDecodeTokens)
    run_bad_index_case(40, dtype);  // the grouped path (routing)
  }
}

TEST_F(HsaAttentionParity, UnsupportedShapeIsAClearError) {
  Tensor q = randn({1, 4, 2, 24}, 1).to(Device::cuda), k = randn({1, 2, 16, 1, 24}, 2).to(Device::cuda);
  Tensor w = rand_uniform({1, 4, 1, 2}, 3, 0, 1).to(Device::cuda);
  Tensor idx = Tensor::from_i32(std::vector<int32_t>(8, 0), {1, 4, 1, 2}).to(Device::cuda);
  EXPECT_THROW(ops::hsa_attention_forward(q, k, k, idx, w, 0.1), std::exception);
}

}  // namespace

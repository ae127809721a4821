// CUDA retrieval against the CPU op: forward (indices exactly, weights and scores by norm) and backward (dqr,
// dlandmarks), f32 and bf16, softmax and stick-breaking, windows, q_start, ties, t < S, fewer chunks than K, and
// outputs poisoned before each kernel call. Relative error by norm: f32 < 1e-5, bf16 < 1e-2.
// Every forward kernel that takes a case runs it (RetrievalKernel: scalar always, mma and gated for bf16 with dr a
// multiple of 8 up to 128, split for at most 16 rows). gated computes the mma kernel's scores with the same
// instructions, so the two agree bit for bit on any input (GatedMatchesMmaBitForBit). Forced ties (integer inputs, a power-of-two scale: every kernel's
// scores are exact) check the tie rule bit for bit; split and scalar do the same f32 arithmetic, so they agree bit
// for bit on any input; a 1M-token smoke case checks sampled rows of mma and split against scores in double.
#include "cuda/retrieval.h"
#include "cuda/runtime.h"
#include "gpu/parity.h"
#include "ops/retrieval.h"

#include <hsa/error.h>
#include <hsa/random.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

using namespace hsa;

namespace {

using cuda::RetrievalKernel;

// The kernels that take these inputs (automatic's choice among them).
std::vector<RetrievalKernel> kernels_for(DType dtype, const RetrievalDims& d) {
  std::vector<RetrievalKernel> ks{RetrievalKernel::scalar};
  if (dtype == DType::bf16 && d.dim % 8 == 0 && d.dim <= 128) {
    ks.push_back(RetrievalKernel::mma);
    ks.push_back(RetrievalKernel::gated);
  }
  if (d.seq_len <= cuda::kRetrievalSplitMaxRows) ks.push_back(RetrievalKernel::split);
  return ks;
}

struct DeviceOut {
  Tensor idx, w, s;
};

// One forward on poisoned outputs (indices -7, weights and scores NaN), back on the host.
DeviceOut forward_on(RetrievalKernel kernel, DType dtype, const Tensor& qd, const Tensor& ld,
                     const RetrievalDims& d, double scale) {
  const Shape os{d.batch, d.seq_len, d.heads, d.topk};
  Tensor idx = Tensor::full(os, -7, DType::i32).to(Device::cuda);
  Tensor w = Tensor::full(os, std::numeric_limits<double>::quiet_NaN(), DType::f32).to(Device::cuda);
  Tensor s = Tensor::full(os, std::numeric_limits<double>::quiet_NaN(), DType::f32).to(Device::cuda);
  cuda::retrieval_forward(dtype, qd.raw_data(), ld.raw_data(), idx.data<int32_t>(), w.data<float>(), s.data<float>(),
                          d, scale, kernel);
  cuda::synchronize();
  return {idx.to(Device::cpu), w.to(Device::cpu), s.to(Device::cpu)};
}

// Bit patterns of a float tensor (exact comparisons that NaN and -0 cannot fool).
std::vector<uint32_t> bits(const Tensor& t) {
  std::vector<uint32_t> out(size_t(t.numel()));
  std::memcpy(out.data(), t.data<float>(), out.size() * 4);
  return out;
}

double rel_err(const Tensor& gpu, const Tensor& cpu) {
  std::vector<double> a = gpu.to(Device::cpu).to_vector(), b = cpu.to_vector();
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return std::numeric_limits<double>::infinity();
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

Tensor poisoned(const Shape& shape, DType dtype, double value = std::numeric_limits<double>::quiet_NaN()) {
  return Tensor::full(shape, value, dtype).to(Device::cuda);
}

struct Case {
  int64_t B, L, H, dr, C, S, K, W, q_start;
  ops::ChunkWeighting weighting;
  bool ties;  // landmarks of chunks 1 and 3 (and 4 and 6) identical: exact ties, the larger chunk must win
};

void run_case(const Case& c, DType dtype, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "B=" << c.B << " L=" << c.L << " H=" << c.H << " dr=" << c.dr << " C=" << c.C
                                    << " S=" << c.S << " K=" << c.K << " W=" << c.W << " q_start=" << c.q_start
                                    << " sb=" << (c.weighting == ops::ChunkWeighting::stick_breaking) << " "
                                    << dtype_name(dtype));
  const double tol = dtype == DType::f32 ? 1e-5 : 1e-2;
  Tensor qr = randn({c.B, c.L, c.H, c.dr}, seed, 1.0, dtype);
  Tensor lm = randn({c.B, c.C, c.H, c.dr}, seed + 1, 1.0, dtype);
  if (c.ties)
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.H; ++h)
        for (int64_t x = 0; x < c.dr; ++x) {
          if (c.C > 3) lm.set({b, 3, h, x}, lm.item({b, 1, h, x}));
          if (c.C > 6) lm.set({b, 6, h, x}, lm.item({b, 4, h, x}));
        }
  ops::RetrievalParams p{c.S, c.K, c.W, c.q_start, 0.0, c.weighting};
  ops::RetrievalOut ref = ops::retrieval_forward(qr, lm, p);
  Tensor qd = qr.to(Device::cuda), ld = lm.to(Device::cuda);
  RetrievalDims d{c.B, c.L, c.C, c.H, c.dr, c.S, c.K, c.W, c.q_start,
                       c.weighting == ops::ChunkWeighting::stick_breaking};
  const double scale = 1.0 / std::sqrt(double(c.dr));
  const Shape os{c.B, c.L, c.H, c.K};
  Tensor idx = poisoned(os, DType::i32, -7), w = poisoned(os, DType::f32), s = poisoned(os, DType::f32);
  cuda::retrieval_forward(dtype, qd.raw_data(), ld.raw_data(), idx.data<int32_t>(), w.data<float>(),
                          s.data<float>(), d, scale);
  EXPECT_EQ(idx.to(Device::cpu).to_vector(), ref.indices.to_vector()) << "indices";
  EXPECT_LT(rel_err(w, ref.weights), tol) << "weights";
  EXPECT_LT(rel_err(s, ref.scores), tol) << "scores";
  for (RetrievalKernel k : kernels_for(dtype, d)) {
    SCOPED_TRACE(cuda::retrieval_kernel_name(k));
    const DeviceOut o = forward_on(k, dtype, qd, ld, d, scale);
    EXPECT_EQ(o.idx.to_vector(), ref.indices.to_vector()) << "indices";
    EXPECT_LT(rel_err(o.w, ref.weights), tol) << "weights";
    EXPECT_LT(rel_err(o.s, ref.scores), tol) << "scores";
  }

  // Backward from the CPU forward's selection (same indices on both sides).
  Tensor dw = randn(os, seed + 2);
  ops::RetrievalGrads gref = ops::retrieval_backward(dw, qr, lm, ref, p);
  Tensor dqr = poisoned(qr.shape(), dtype), dlm = poisoned(lm.shape(), dtype);
  Tensor id = ref.indices.to(Device::cuda), wd = ref.weights.to(Device::cuda), sd = ref.scores.to(Device::cuda),
         dwd = dw.to(Device::cuda);
  cuda::retrieval_backward(dtype, dwd.data<float>(), qd.raw_data(), ld.raw_data(), id.data<int32_t>(),
                           wd.data<float>(), sd.data<float>(), dqr.raw_data(), dlm.raw_data(), d, scale);
  ASSERT_NO_THROW(cuda::synchronize()) << "no bad index, no kernel error";
  EXPECT_LT(rel_err(dqr, gref.dqr), tol) << "dqr";
  EXPECT_LT(rel_err(dlm, gref.dlandmarks), tol) << "dlandmarks";

  // Through the ops (dispatch), bit-identical to the kernel calls.
  ops::RetrievalOut op_out = ops::retrieval_forward(qd, ld, p);
  EXPECT_EQ(op_out.indices.to(Device::cpu).to_vector(), idx.to(Device::cpu).to_vector());
  EXPECT_EQ(rel_err(op_out.weights, w), 0.0);
  ops::RetrievalOut dev_ref{id, wd, sd};
  ops::RetrievalGrads op_g = ops::retrieval_backward(dwd, qd, ld, dev_ref, p);
  EXPECT_EQ(rel_err(op_g.dlandmarks, dlm), 0.0) << "dlandmarks determinism";
}

class RetrievalParity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

using W = ops::ChunkWeighting;
const std::vector<Case> kCases = {
    {2, 150, 2, 32, 9, 16, 4, 0, 0, W::softmax, true},          // t < S rows, ties, L not a multiple of 128
    {1, 300, 1, 128, 80, 4, 8, 0, 0, W::softmax, false},        // more chunks than a 64-landmark tile
    {1, 70, 3, 20, 6, 8, 8, 0, 0, W::stick_breaking, true},     // fewer chunks than K, dr not a multiple of 4
    {1, 200, 2, 64, 40, 8, 5, 24, 5, W::softmax, false},        // window mask and q_start
    {2, 129, 1, 48, 30, 8, 3, 16, 100, W::stick_breaking, false},
    // mma: several 64-landmark tiles, rows that see all C chunks (C caps visibility), several heads, ties
    {1, 1000, 2, 128, 150, 4, 8, 0, 0, W::stick_breaking, true},
    {2, 517, 3, 64, 70, 7, 6, 30, 3, W::softmax, true},        // L, window, q_start not aligned to anything
    {1, 260, 1, 8, 200, 1, 10, 0, 0, W::softmax, false},        // dr 8 (padded to 64), S = 1
    // mma with the chunks split too (few row tiles, >= 1024 visible chunks): partial lists merged per row
    {1, 300, 2, 128, 2600, 8, 8, 0, 20000, W::softmax, true},
    {2, 200, 1, 64, 3000, 8, 5, 100, 23000, W::stick_breaking, false},
    // gated's 256-row blocks: L = one chunk (no row sees a chunk), one past it, one past a block; K > the visible
    // chunks; a K of 40 (its lists take 80 KiB of shared memory); dr 64 with a window
    {1, 64, 1, 128, 4, 64, 8, 0, 0, W::softmax, false},
    {2, 65, 1, 128, 4, 64, 8, 0, 0, W::stick_breaking, false},
    {1, 257, 2, 128, 40, 16, 16, 0, 0, W::softmax, true},
    {1, 600, 1, 128, 100, 4, 40, 0, 0, W::softmax, true},
    {1, 1100, 1, 64, 300, 3, 8, 40, 11, W::stick_breaking, true},
    // split (L <= 16): decode rows against several 128-chunk splits, q_start, windows, t < S
    {3, 1, 2, 128, 300, 4, 8, 0, 1200, W::softmax, true},
    {1, 16, 1, 64, 500, 4, 6, 0, 1990, W::stick_breaking, false},
    {2, 5, 2, 40, 260, 4, 4, 64, 1000, W::softmax, false},
    {1, 1, 1, 32, 4, 16, 4, 0, 10, W::softmax, false},          // t < S: nothing visible
    {1, 12, 1, 24, 3, 4, 8, 0, 0, W::stick_breaking, true},     // fewer chunks than K, rows with none
};

TEST_F(RetrievalParity, F32MatchesCpu) {
  uint64_t seed = 300;
  for (const Case& c : kCases) run_case(c, DType::f32, seed += 10);
}

TEST_F(RetrievalParity, Bf16MatchesCpu) {
  uint64_t seed = 400;
  for (const Case& c : kCases) run_case(c, DType::bf16, seed += 10);
}

// Integer inputs in {-1, 0, 1} and scale 1/8: every kernel computes every score exactly (products and sums of small
// integers are exact in f32, on the tensor cores too), so scores repeat a lot and the tie rule alone decides the
// order. Indices and scores must equal the CPU's bit for bit, on every kernel.
TEST_F(RetrievalParity, ForcedTiesMatchCpuBitForBit) {
  struct TieCase {
    int64_t B, L, H, dr, C, S, K, W, q_start;
  };
  const std::vector<TieCase> cases = {
      {1, 700, 2, 32, 300, 2, 8, 0, 0},     // mma: many tiles, scores in [-4, 4] by 1/8: hundreds of ties per row
      {2, 300, 1, 128, 90, 3, 5, 20, 7},    // window, q_start
      {1, 9, 3, 16, 400, 4, 8, 0, 1700},    // split (9 rows) and mma
      {1, 150, 1, 32, 2000, 8, 8, 0, 15000},  // mma with its chunks split over 3 blocks per row tile
      {1, 800, 1, 128, 500, 1, 8, 0, 0},    // gated: 4 row blocks, rows that see up to 500 chunks, most tied
      {1, 1, 1, 8, 200, 8, 16, 0, 1600},    // decode: 8 distinct scores for 200 chunks
  };
  uint64_t state = 99;
  auto ternary = [&](const Shape& shape, DType dtype) {
    Tensor t = Tensor::empty(shape, DType::f32);
    for (int64_t i = 0; i < t.numel(); ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      t.set_flat(i, double(int64_t((state >> 33) % 3) - 1));
    }
    return t.to(dtype);
  };
  for (const TieCase& c : cases)
    for (DType dtype : {DType::f32, DType::bf16})
      for (W weighting : {W::softmax, W::stick_breaking}) {
        const bool sb = weighting == W::stick_breaking;
        SCOPED_TRACE(::testing::Message() << "L=" << c.L << " dr=" << c.dr << " C=" << c.C << " K=" << c.K << " sb="
                                          << sb << " " << dtype_name(dtype));
        Tensor qr = ternary({c.B, c.L, c.H, c.dr}, dtype), lm = ternary({c.B, c.C, c.H, c.dr}, dtype);
        ops::RetrievalParams p{c.S, c.K, c.W, c.q_start, 0.125, weighting};
        ops::RetrievalOut ref = ops::retrieval_forward(qr, lm, p);
        RetrievalDims d{c.B, c.L, c.C, c.H, c.dr, c.S, c.K, c.W, c.q_start, sb};
        Tensor qd = qr.to(Device::cuda), ld = lm.to(Device::cuda);
        for (RetrievalKernel k : kernels_for(dtype, d)) {
          SCOPED_TRACE(cuda::retrieval_kernel_name(k));
          const DeviceOut o = forward_on(k, dtype, qd, ld, d, 0.125);
          EXPECT_EQ(o.idx.to_vector(), ref.indices.to_vector()) << "indices";
          EXPECT_EQ(bits(o.s), bits(ref.scores.to(DType::f32))) << "scores";
          EXPECT_LT(rel_err(o.w, ref.weights), 1e-5) << "weights";
        }
      }
}

// split and scalar compute every score with the same f32 operations in the same order: on any input they give the
// same bits, near-ties included (and random bf16 inputs at dr 128 have plenty of near-ties among 2000 chunks).
TEST_F(RetrievalParity, SplitMatchesScalarBitForBit) {
  for (DType dtype : {DType::f32, DType::bf16})
    for (int64_t L : {int64_t(1), int64_t(7), int64_t(16)}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " L=" << L);
      const int64_t B = 2, H = 2, dr = 128, C = 2100, S = 8;
      RetrievalDims d{B, L, C, H, dr, S, 8, 0, 16500, L == 7};
      Tensor qd = randn({B, L, H, dr}, 70 + L, 1.0, dtype).to(Device::cuda);
      Tensor ld = randn({B, C, H, dr}, 71 + L, 1.0, dtype).to(Device::cuda);
      const DeviceOut a = forward_on(RetrievalKernel::split, dtype, qd, ld, d, 0.088);
      const DeviceOut b = forward_on(RetrievalKernel::scalar, dtype, qd, ld, d, 0.088);
      EXPECT_EQ(a.idx.to_vector(), b.idx.to_vector());
      EXPECT_EQ(bits(a.s), bits(b.s));
      EXPECT_EQ(bits(a.w), bits(b.w));
    }
}

// gated and mma compute every score with the same tensor-core instructions on the same fragments, and both select
// exactly: on any input, near-ties included, they give the same bits. Random bf16 at dr 128 against up to 3000
// chunks (many near-ties), lengths that are no multiple of either kernel's block, windows, q_start, a negative
// scale, dr 64, and few row tiles against many chunks (both split the chunks over blocks).
TEST_F(RetrievalParity, GatedMatchesMmaBitForBit) {
  struct GCase {
    int64_t B, L, H, dr, C, S, K, W, q_start;
    bool sb;
    double scale;
  };
  const std::vector<GCase> cases = {
      {1, 3000, 1, 128, 3000, 1, 8, 0, 0, false, 0.088},      // rows see up to 3000 chunks
      {2, 777, 2, 128, 400, 2, 8, 0, 0, true, 0.088},
      {1, 1029, 1, 64, 600, 2, 5, 100, 37, false, 0.125},      // dr 64, window, q_start
      {1, 513, 1, 40, 300, 2, 8, 0, 0, false, 0.2},            // dr 40, padded to 64
      {1, 900, 1, 128, 450, 2, 8, 0, 0, false, -0.088},        // negative scale: the smallest products win
      {1, 300, 2, 128, 2600, 8, 16, 0, 20000, false, 0.088},   // 2 row tiles: chunks split over blocks
      {1, 256, 1, 128, 3000, 64, 8, 0, 1 << 20, true, 0.088},  // all rows see all 3000 chunks
  };
  for (const GCase& c : cases) {
    SCOPED_TRACE(::testing::Message() << "B=" << c.B << " L=" << c.L << " H=" << c.H << " dr=" << c.dr << " C="
                                      << c.C << " K=" << c.K << " q_start=" << c.q_start << " scale=" << c.scale);
    RetrievalDims d{c.B, c.L, c.C, c.H, c.dr, c.S, c.K, c.W, c.q_start, c.sb};
    Tensor qd = randn({c.B, c.L, c.H, c.dr}, 500 + c.L, 1.0, DType::bf16).to(Device::cuda);
    Tensor ld = randn({c.B, c.C, c.H, c.dr}, 501 + c.L, 1.0, DType::bf16).to(Device::cuda);
    const DeviceOut g = forward_on(RetrievalKernel::gated, DType::bf16, qd, ld, d, c.scale);
    const DeviceOut m = forward_on(RetrievalKernel::mma, DType::bf16, qd, ld, d, c.scale);
    EXPECT_EQ(g.idx.to_vector(), m.idx.to_vector()) << "indices";
    EXPECT_EQ(bits(g.s), bits(m.s)) << "scores";
    EXPECT_EQ(bits(g.w), bits(m.w)) << "weights";
  }
}

// Every landmark a copy of one of 50 (chunk c = chunk c mod 50): each distinct score comes up to 8 times, exactly
// equal on every device, and the most recent copies must win, as on the CPU. Random bf16 values (the 50 distinct
// scores of a row are far apart against the f32 rounding), a positive and a negative scale.
TEST_F(RetrievalParity, GatedTiesOnDuplicatedLandmarks) {
  const int64_t B = 1, L = 900, H = 2, dr = 128, C = 400, S = 2;
  for (double scale : {0.088, -0.088})
    for (int64_t K : {int64_t(4), int64_t(8), int64_t(12)}) {
      SCOPED_TRACE(::testing::Message() << "K=" << K << " scale=" << scale);
      Tensor qr = randn({B, L, H, dr}, 610, 1.0, DType::bf16);
      Tensor base = randn({B, 50, H, dr}, 611, 1.0, DType::bf16), lm = Tensor::empty({B, C, H, dr}, DType::bf16);
      for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t x = 0; x < dr; ++x) lm.set({0, c, h, x}, base.item({0, c % 50, h, x}));
      ops::RetrievalParams p{S, K, 0, 0, scale, W::softmax};
      ops::RetrievalOut ref = ops::retrieval_forward(qr, lm, p);
      RetrievalDims d{B, L, C, H, dr, S, K, 0, 0, false};
      const DeviceOut o = forward_on(RetrievalKernel::gated, DType::bf16, qr.to(Device::cuda), lm.to(Device::cuda),
                                     d, scale);
      EXPECT_EQ(o.idx.to_vector(), ref.indices.to_vector()) << "indices";
      EXPECT_LT(rel_err(o.s, ref.scores), 1e-2) << "scores";
      EXPECT_LT(rel_err(o.w, ref.weights), 1e-2) << "weights";
    }
}

// automatic: split for few rows, mma for bf16 it takes, scalar for the rest (f32, dr not a multiple of 8, dr > 128,
// qr or landmarks not 16-byte aligned); an explicit kernel that does not take the inputs throws naming itself.
TEST_F(RetrievalParity, KernelChoiceAndRefusals) {
  using hsa::testing::gpu_misaligned;
  RetrievalDims d{1, 40, 12, 1, 64, 4, 4, 0, 0, false};
  Tensor q = randn({1, 40, 1, 64}, 5, 1.0, DType::bf16), l = randn({1, 12, 1, 64}, 6, 1.0, DType::bf16);
  Tensor qd = q.to(Device::cuda), ld = l.to(Device::cuda), qm = gpu_misaligned(q);
  const RetrievalKernel tensor_core = cuda::retrieval_tensor_core_kernel();
  EXPECT_TRUE(tensor_core == RetrievalKernel::mma || tensor_core == RetrievalKernel::gated);
  EXPECT_EQ(cuda::retrieval_kernel_for(DType::bf16, qd.raw_data(), ld.raw_data(), d), tensor_core);
  EXPECT_EQ(cuda::retrieval_kernel_for(DType::bf16, qm.raw_data(), ld.raw_data(), d), RetrievalKernel::scalar);
  EXPECT_EQ(cuda::retrieval_kernel_for(DType::f32, qd.raw_data(), ld.raw_data(), d), RetrievalKernel::scalar);
  RetrievalDims few = d;
  few.seq_len = 16;
  EXPECT_EQ(cuda::retrieval_kernel_for(DType::bf16, qd.raw_data(), ld.raw_data(), few), RetrievalKernel::split);
  RetrievalDims odd = d;
  odd.dim = 60;
  EXPECT_EQ(cuda::retrieval_kernel_for(DType::bf16, qd.raw_data(), ld.raw_data(), odd), RetrievalKernel::scalar);
  odd.dim = 136;
  EXPECT_EQ(cuda::retrieval_kernel_for(DType::bf16, qd.raw_data(), ld.raw_data(), odd), RetrievalKernel::scalar);
  // A misaligned qr goes through the ops to the scalar kernel and still matches the CPU.
  ops::RetrievalParams p{4, 4};
  ops::RetrievalOut ref = ops::retrieval_forward(q, l, p), got = ops::retrieval_forward(qm, ld, p);
  EXPECT_EQ(got.indices.to(Device::cpu).to_vector(), ref.indices.to_vector());
  const Shape os{1, 40, 1, 4};
  Tensor idx = Tensor::empty(os, DType::i32, Device::cuda), w = Tensor::empty(os, DType::f32, Device::cuda),
         s = Tensor::empty(os, DType::f32, Device::cuda);
  auto call = [&](const Tensor& qq, DType dtype, const RetrievalDims& dd, RetrievalKernel k) {
    cuda::retrieval_forward(dtype, qq.raw_data(), ld.raw_data(), idx.data<int32_t>(), w.data<float>(),
                            s.data<float>(), dd, 0.125, k);
  };
  auto refused = [&](auto&& f, const std::string& what) {
    try {
      f();
      ADD_FAILURE() << "expected an error naming " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  refused([&] { call(qm, DType::bf16, d, RetrievalKernel::mma); }, "the mma kernel");
  refused([&] { call(qd, DType::f32, d, RetrievalKernel::mma); }, "the mma kernel");
  refused([&] { call(qm, DType::bf16, d, RetrievalKernel::gated); }, "the gated kernel");
  refused([&] { call(qd, DType::f32, d, RetrievalKernel::gated); }, "the gated kernel");
  RetrievalDims big_k = d;
  big_k.topk = 1000;  // lists of 2 MB
  refused([&] { call(qd, DType::bf16, big_k, RetrievalKernel::gated); }, "the gated kernel");
  refused([&] { call(qd, DType::bf16, d, RetrievalKernel::split); }, "the split kernel takes at most 16");
}

// Causal retrieval at 1M tokens, the benchmark's shape (B 1, H 1, dr 128, S 64, K 8, bf16, C = 16384), through the
// ops (the tensor-core kernel the switch picks), and the last token alone (decode: split); mma and gated called
// explicitly must give the same bits on every row, and the sampled rows are checked on both: on sampled rows every slot must hold a visible chunk, the
// chunks must be distinct, the reported scores must be the scores in double (bf16 products are exact) to 1e-4, and
// no unselected visible chunk may beat the K-th selected one by more than 1e-4 (the f32 rounding of the kernels).
TEST_F(RetrievalParity, OneMillionTokensSmoke) {
  const int64_t L = int64_t(1) << 20, S = 64, C = L / S, dr = 128, K = 8;
  std::vector<bf16> q_host(size_t(L * dr)), l_host(size_t(C * dr));
  uint64_t state = 2024;
  auto uniform = [&] {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return float(double(state >> 11) * 0x1.0p-53 * 2 - 1);
  };
  for (bf16& v : q_host) v = bf16(uniform());
  for (bf16& v : l_host) v = bf16(uniform());
  auto tensor_of = [](std::vector<bf16>& v, const Shape& shape) {
    Tensor t = Tensor::empty(shape, DType::bf16);
    std::memcpy(t.data<bf16>(), v.data(), v.size() * sizeof(bf16));
    return t.to(Device::cuda);
  };
  Tensor qd = tensor_of(q_host, {1, L, 1, dr}), ld = tensor_of(l_host, {1, C, 1, dr});
  const double scale = 1.0 / std::sqrt(double(dr));
  ops::RetrievalParams p{S, K, 0, 0, scale, W::softmax};
  ops::RetrievalOut full = ops::retrieval_forward(qd, ld, p);
  ops::RetrievalParams pd = p;
  pd.q_start = L - 1;
  ops::RetrievalOut last = ops::retrieval_forward(qd.slice(1, L - 1, L), ld, pd);
  cuda::synchronize();
  const std::vector<double> idx = full.indices.to(Device::cpu).to_vector(), sc = full.scores.to(Device::cpu).to_vector(),
                            wt = full.weights.to(Device::cpu).to_vector();
  const std::vector<double> idx1 = last.indices.to(Device::cpu).to_vector(),
                            sc1 = last.scores.to(Device::cpu).to_vector();
  const RetrievalDims d{1, L, C, 1, dr, S, K, 0, 0, false};
  const DeviceOut gated = forward_on(RetrievalKernel::gated, DType::bf16, qd, ld, d, scale);
  const DeviceOut mma = forward_on(RetrievalKernel::mma, DType::bf16, qd, ld, d, scale);
  EXPECT_EQ(gated.idx.to_vector(), mma.idx.to_vector()) << "gated and mma indices";
  EXPECT_EQ(bits(gated.s), bits(mma.s)) << "gated and mma scores";
  EXPECT_EQ(bits(gated.w), bits(mma.w)) << "gated and mma weights";
  const std::vector<double> gidx = gated.idx.to_vector(), gsc = gated.s.to_vector(), gwt = gated.w.to_vector();

  auto check_row = [&](int64_t t, const double* ri, const double* rs, const double* rw) {
    SCOPED_TRACE(::testing::Message() << "row " << t);
    const int64_t visible = std::min(t / S, C), n = std::min(visible, K);
    std::vector<double> score(static_cast<size_t>(visible));
    for (int64_t c = 0; c < visible; ++c) {
      double dot = 0;
      for (int64_t x = 0; x < dr; ++x) dot += double(float(q_host[size_t(t * dr + x)])) * double(float(l_host[size_t(c * dr + x)]));
      score[size_t(c)] = dot * scale;
    }
    std::vector<bool> chosen(static_cast<size_t>(visible), false);
    double kth = INFINITY, wsum = 0;
    for (int64_t i = 0; i < K; ++i) {
      const int64_t c = int64_t(ri[i]);
      if (i >= n) {
        EXPECT_EQ(c, -1) << "slot " << i;
        continue;
      }
      ASSERT_TRUE(c >= 0 && c < visible) << "slot " << i << " holds " << c;
      EXPECT_FALSE(chosen[size_t(c)]) << "chunk " << c << " twice";
      chosen[size_t(c)] = true;
      EXPECT_NEAR(rs[i], score[size_t(c)], 1e-4) << "slot " << i;
      if (i > 0) EXPECT_GE(rs[i - 1], rs[i]) << "softmax slots are sorted";
      kth = std::min(kth, score[size_t(c)]);
      if (rw) wsum += rw[i];
    }
    for (int64_t c = 0; c < visible; ++c)
      if (!chosen[size_t(c)]) EXPECT_LE(score[size_t(c)], kth + 1e-4) << "unselected chunk " << c;
    if (rw && n > 0) EXPECT_NEAR(wsum, 1.0, 1e-5);
  };
  std::vector<int64_t> rows = {0, 63, 64, 65, 127, 128, 129, 511, 512, 4095, 65535, 65536, L / 2 + 17, L - 129,
                               L - 128, L - 65, L - 64, L - 2, L - 1};
  for (int i = 0; i < 24; ++i) rows.push_back(int64_t(uniform() * 0.5 * double(L) + 0.5 * double(L)));
  for (int64_t t : rows) check_row(t, &idx[size_t(t * K)], &sc[size_t(t * K)], &wt[size_t(t * K)]);
  for (int64_t t : rows) check_row(t, &gidx[size_t(t * K)], &gsc[size_t(t * K)], &gwt[size_t(t * K)]);
  check_row(L - 1, idx1.data(), sc1.data(), nullptr);
}

// dlandmarks when one chunk is chosen by every token (slot 0 of every row: thousands of entries, split over many
// blocks and added in split order), the other slots random (empty ones too), for dr below, at and above one
// 128-column pass. Matches the CPU and gives the same bits on a second call.
TEST_F(RetrievalParity, HotChunkBackward) {
  const int64_t B = 2, L = 3000, H = 2, C = 12, K = 4;
  for (DType dtype : {DType::f32, DType::bf16})
    for (int64_t dr : {int64_t(20), int64_t(128), int64_t(200)}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " dr=" << dr);
      const double tol = dtype == DType::f32 ? 1e-5 : 1e-2;
      Tensor qr = randn({B, L, H, dr}, 900 + dr, 1.0, dtype), lm = randn({B, C, H, dr}, 901 + dr, 1.0, dtype);
      const Shape os{B, L, H, K};
      Tensor idx = Tensor::zeros(os, DType::i32), w = randn(os, 902, 0.5), s = randn(os, 903), dw = randn(os, 904);
      uint64_t state = 12345;
      for (int64_t f = 0; f < idx.numel(); ++f) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        const int64_t pick = int64_t((state >> 33) % uint64_t(C + 1)) - 1;  // -1 = empty
        idx.set_flat(f, f % K == 0 ? 0 : pick);
        if (idx.get_flat(f) < 0) w.set_flat(f, 0), s.set_flat(f, 0);
      }
      ops::RetrievalParams p{64, K};
      ops::RetrievalOut fwd{idx, w, s};
      ops::RetrievalGrads ref = ops::retrieval_backward(dw, qr, lm, fwd, p);
      RetrievalDims d{B, L, C, H, dr, 64, K, 0, 0, false};
      const double scale = 1.0 / std::sqrt(double(dr));
      Tensor qd = qr.to(Device::cuda), ld = lm.to(Device::cuda), id = idx.to(Device::cuda), wd = w.to(Device::cuda),
             sd = s.to(Device::cuda), dwd = dw.to(Device::cuda);
      Tensor first;
      for (int run = 0; run < 2; ++run) {
        Tensor dqr = poisoned(qr.shape(), dtype), dlm = poisoned(lm.shape(), dtype);
        cuda::retrieval_backward(dtype, dwd.data<float>(), qd.raw_data(), ld.raw_data(), id.data<int32_t>(),
                                 wd.data<float>(), sd.data<float>(), dqr.raw_data(), dlm.raw_data(), d, scale);
        cuda::synchronize();  // no bad index: nothing to throw
        EXPECT_LT(rel_err(dqr, ref.dqr), tol) << "dqr";
        EXPECT_LT(rel_err(dlm, ref.dlandmarks), tol) << "dlandmarks";
        if (run == 0) first = dlm.to(Device::cpu);
        else EXPECT_EQ(dlm.to(Device::cpu).to_vector(), first.to_vector()) << "dlandmarks determinism";
      }
    }
}

// The backward never waits for the device: a bad index throws at the next cuda::synchronize(), naming the highest
// bad flat position (as the CPU op does).
TEST_F(RetrievalParity, BadIndexInBackwardThrowsAtTheNextSync) {
  Tensor qr = randn({1, 4, 1, 8}, 1).to(Device::cuda), lm = randn({1, 2, 1, 8}, 2).to(Device::cuda);
  ops::RetrievalParams p{1, 2};
  ops::RetrievalOut fwd = ops::retrieval_forward(qr, lm, p);
  Tensor bad_idx = fwd.indices.to(Device::cpu).clone();
  bad_idx.set({0, 1, 0, 1}, -3);  // flat 3
  bad_idx.set({0, 3, 0, 0}, 5);   // flat 6: the one reported
  fwd.indices = bad_idx.to(Device::cuda);
  ops::RetrievalGrads g = ops::retrieval_backward(randn({1, 4, 1, 2}, 3).to(Device::cuda), qr, lm, fwd, p);
  try {
    cuda::synchronize();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("retrieval_backward: 'fwd.indices'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("5 at flat index 6, outside [0, 2)"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(cuda::synchronize()) << "the record is cleared once reported";
}

}  // namespace

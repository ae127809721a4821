// CUDA retrieval against the CPU op: forward (indices exactly, weights and scores by norm) and backward (dqr,
// dlandmarks), f32 and bf16, softmax and stick-breaking, windows, q_start, ties, t < S, fewer chunks than K, and
// outputs poisoned before each kernel call. Relative error by norm: f32 < 1e-5, bf16 < 1e-2.
#include "cuda/retrieval.h"
#include "cuda/runtime.h"
#include "ops/retrieval.h"

#include <hsa/error.h>
#include <hsa/random.h>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace hsa;

namespace {

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
  cpu::RetrievalDims d{c.B, c.L, c.C, c.H, c.dr, c.S, c.K, c.W, c.q_start,
                       c.weighting == ops::ChunkWeighting::stick_breaking};
  const double scale = 1.0 / std::sqrt(double(c.dr));
  const Shape os{c.B, c.L, c.H, c.K};
  Tensor idx = poisoned(os, DType::i32, -7), w = poisoned(os, DType::f32), s = poisoned(os, DType::f32);
  cuda::retrieval_forward(dtype, qd.raw_data(), ld.raw_data(), idx.data<int32_t>(), w.data<float>(),
                          s.data<float>(), d, scale);
  EXPECT_EQ(idx.to(Device::cpu).to_vector(), ref.indices.to_vector()) << "indices";
  EXPECT_LT(rel_err(w, ref.weights), tol) << "weights";
  EXPECT_LT(rel_err(s, ref.scores), tol) << "scores";

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
};

TEST_F(RetrievalParity, F32MatchesCpu) {
  uint64_t seed = 300;
  for (const Case& c : kCases) run_case(c, DType::f32, seed += 10);
}

TEST_F(RetrievalParity, Bf16MatchesCpu) {
  uint64_t seed = 400;
  for (const Case& c : kCases) run_case(c, DType::bf16, seed += 10);
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
      cpu::RetrievalDims d{B, L, C, H, dr, 64, K, 0, 0, false};
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

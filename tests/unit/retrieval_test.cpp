#include "common/gradcheck.h"
#include "ops/retrieval.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace hsa;
using namespace hsa::testing;

namespace {

// The op's definition, written out directly: for every (b, t, h) list the visible chunks by the two rules,
// score them, sort by (score desc, chunk desc), keep K, reorder for stick-breaking, weight.
struct NaiveRetrieval {
  std::vector<int32_t> indices;
  std::vector<double> weights, scores;
};

NaiveRetrieval naive_retrieval(const Tensor& qr, const Tensor& lmk, const ops::RetrievalParams& p) {
  int64_t B = qr.dim(0), L = qr.dim(1), H = qr.dim(2), D = qr.dim(3), C = lmk.dim(1), K = p.topk,
          S = p.chunk_size, W = p.window;
  double scale = p.scale != 0 ? p.scale : 1.0 / std::sqrt(double(D));
  NaiveRetrieval out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t h = 0; h < H; ++h) {
        int64_t pos = p.q_start + t;
        std::vector<std::pair<double, int64_t>> cand;
        for (int64_t c = 0; c < C; ++c) {
          bool complete = (c + 1) * S <= pos;
          bool outside_window = W == 0 || c * S <= pos - W;
          if (!complete || !outside_window) continue;
          double s = 0;
          for (int64_t j = 0; j < D; ++j) s += qr.item({b, t, h, j}) * lmk.item({b, c, h, j});
          cand.push_back({s * scale, c});
        }
        std::sort(cand.begin(), cand.end(), [](auto& x, auto& y) {
          return x.first != y.first ? x.first > y.first : x.second > y.second;
        });
        if (int64_t(cand.size()) > K) cand.resize(K);
        std::vector<double> w(cand.size());
        if (p.weighting == ops::ChunkWeighting::stick_breaking) {
          std::sort(cand.begin(), cand.end(), [](auto& x, auto& y) { return x.second > y.second; });
          double rest = 1;
          for (size_t i = 0; i < cand.size(); ++i) {
            double sig = 1 / (1 + std::exp(-cand[i].first));
            w[i] = sig * rest;
            rest *= 1 - sig;
          }
        } else {
          double sum = 0;
          for (size_t i = 0; i < cand.size(); ++i) sum += w[i] = std::exp(cand[i].first);
          for (double& x : w) x /= sum;
        }
        for (int64_t i = 0; i < K; ++i) {
          bool filled = i < int64_t(cand.size());
          out.indices.push_back(filled ? int32_t(cand[i].second) : -1);
          out.weights.push_back(filled ? w[i] : 0);
          out.scores.push_back(filled ? cand[i].first : 0);
        }
      }
  return out;
}

void expect_matches_naive(const Tensor& qr, const Tensor& lmk, const ops::RetrievalParams& p, double tol = 1e-10) {
  auto got = ops::retrieval_forward(qr, lmk, p);
  auto want = naive_retrieval(qr, lmk, p);
  Shape shape{qr.dim(0), qr.dim(1), qr.dim(2), p.topk};
  ASSERT_EQ(got.indices.shape(), shape);
  ASSERT_EQ(got.indices.dtype(), DType::i32);
  const int32_t* idx = got.indices.data<int32_t>();
  int mismatches = 0;
  for (size_t i = 0; i < want.indices.size() && mismatches < 5; ++i) {
    if (idx[i] != want.indices[i]) {
      ++mismatches;
      ADD_FAILURE() << "slot " << i << ": index " << idx[i] << ", expected " << want.indices[i];
    }
    EXPECT_NEAR(got.weights.get_flat(int64_t(i)), want.weights[i], tol) << "slot " << i;
    EXPECT_NEAR(got.scores.get_flat(int64_t(i)), want.scores[i], tol * 10) << "slot " << i;
  }
}

ops::RetrievalParams params(int64_t S, int64_t K, int64_t W = 0, int64_t q_start = 0,
                            ops::ChunkWeighting weighting = ops::ChunkWeighting::softmax) {
  ops::RetrievalParams p{S, K};
  p.window = W;
  p.q_start = q_start;
  p.weighting = weighting;
  return p;
}

constexpr ops::ChunkWeighting kBoth[] = {ops::ChunkWeighting::softmax, ops::ChunkWeighting::stick_breaking};

}  // namespace

// L = 23 is not a multiple of S = 4 (C = 5 landmarks); K = 3 < C and K = 7 > C; window off and on.
TEST(Retrieval, ForwardMatchesNaiveAcrossMasksAndWeightings) {
  Tensor qr = randn64({2, 23, 3, 8}, 1), lmk = randn64({2, 5, 3, 8}, 2);
  for (auto weighting : kBoth)
    for (int64_t K : {3, 7})
      for (int64_t W : {0, 6, 9}) {
        SCOPED_TRACE(::testing::Message() << "weighting " << int(weighting) << " K " << K << " W " << W);
        expect_matches_naive(qr, lmk, params(4, K, W, 0, weighting));
      }
}

// Several row tiles (L > 32) and a chunk count that is not a multiple of anything; per-thread buffers get reused.
TEST(Retrieval, ForwardMatchesNaiveOverManyTiles) {
  Tensor qr = randn64({1, 150, 2, 6}, 3), lmk = randn64({1, 37, 2, 6}, 4);
  for (auto weighting : kBoth) expect_matches_naive(qr, lmk, params(4, 5, 10, 0, weighting));
}

TEST(Retrieval, F32MatchesNaive) {
  Tensor qr = randn({2, 40, 2, 16}, 5), lmk = randn({2, 10, 2, 16}, 6);
  for (auto weighting : kBoth) expect_matches_naive(qr, lmk, params(4, 4, 0, 0, weighting), 1e-5);
}

TEST(Retrieval, NoCompleteChunkBeforeChunkSize) {
  int64_t S = 8;
  Tensor qr = randn64({1, 20, 2, 4}, 7), lmk = randn64({1, 2, 2, 4}, 8);
  for (auto weighting : kBoth) {
    auto out = ops::retrieval_forward(qr, lmk, params(S, 3, 0, 0, weighting));
    for (int64_t t = 0; t < 20; ++t)
      for (int64_t h = 0; h < 2; ++h) {
        int64_t expect_filled = std::min<int64_t>(t / S, 2);  // t < S: nothing is complete yet
        for (int64_t i = 0; i < 3; ++i) {
          bool filled = i < expect_filled;
          EXPECT_EQ(out.indices.item({0, t, h, i}) >= 0, filled) << "t " << t << " slot " << i;
          if (!filled) {
            EXPECT_EQ(out.indices.item({0, t, h, i}), -1);
            EXPECT_EQ(out.weights.item({0, t, h, i}), 0.0);
            EXPECT_EQ(out.scores.item({0, t, h, i}), 0.0);
          }
        }
      }
    expect_matches_naive(qr, lmk, params(S, 3, 0, 0, weighting));
  }
}

// Decode: one query at absolute position 1000 against the 15 complete chunks of S = 64 (15 * 64 = 960 <= 1000).
TEST(Retrieval, DecodeQueryWithStartOffset) {
  Tensor qr = randn64({1, 1, 2, 16}, 9), lmk = randn64({1, 15, 2, 16}, 10);
  for (auto weighting : kBoth) {
    expect_matches_naive(qr, lmk, params(64, 4, 0, 1000, weighting));
    // Window 200: chunks starting after 800 (c >= 13) lie wholly inside the window; 13 remain visible.
    expect_matches_naive(qr, lmk, params(64, 20, 200, 1000, weighting));
    auto out = ops::retrieval_forward(qr, lmk, params(64, 20, 200, 1000, weighting));
    for (int64_t h = 0; h < 2; ++h) {
      EXPECT_GE(out.indices.item({0, 0, h, 12}), 0);
      EXPECT_EQ(out.indices.item({0, 0, h, 13}), -1);
      for (int64_t i = 0; i < 13; ++i) EXPECT_LT(out.indices.item({0, 0, h, i}), 13);
    }
  }
  // A chunked-prefill segment starting at 128 sees exactly what the same rows of a full pass see.
  Tensor full_q = randn64({1, 200, 2, 16}, 11);
  auto full = ops::retrieval_forward(full_q, lmk, params(64, 3, 70));
  auto seg = ops::retrieval_forward(full_q.slice(1, 128, 200).contiguous(), lmk, params(64, 3, 70, 128));
  EXPECT_EQ(seg.indices.to_vector(), full.indices.slice(1, 128, 200).to_vector());
  EXPECT_EQ(max_abs_diff(seg.weights, full.weights.slice(1, 128, 200)), 0.0);
}

// Identical landmarks tie exactly: the most recent visible chunks win, most recent first, in both weightings.
// Values are multiples of 1/4 so every dot product is exact whatever the summation order.
TEST(Retrieval, TiesPreferTheMoreRecentChunk) {
  int64_t S = 2, C = 6, D = 4;
  Tensor qr = Tensor::full({1, 13, 1, D}, 0.5, DType::f32), lmk = Tensor::full({1, C, 1, D}, 0.25, DType::f32);
  for (auto weighting : kBoth) {
    auto out = ops::retrieval_forward(qr, lmk, params(S, 3, 0, 0, weighting));
    for (int64_t t = 0; t < 13; ++t) {
      int64_t visible = std::min<int64_t>(t / S, C);
      for (int64_t i = 0; i < 3; ++i)
        EXPECT_EQ(out.indices.item({0, t, 0, i}), i < visible ? double(visible - 1 - i) : -1.0)
            << "t " << t << " slot " << i;
    }
    expect_matches_naive(qr, lmk, params(S, 3, 0, 0, weighting), 1e-6);
  }
  // Partial ties: chunks 1 and 4 share the best landmark, 0 and 2 the second best; chunk 3 and 5 are worse.
  std::vector<double> rows = {0.5, 0.5, 1, 1, 0.5, 0.5, 0.25, 0, 1, 1, 0, 0.25};
  Tensor lmk2 = Tensor::from_values(rows, {1, C, 1, 2});
  Tensor q2 = Tensor::full({1, 1, 1, 2}, 1.0);
  auto out = ops::retrieval_forward(q2, lmk2, params(S, 4, 0, 100));
  std::vector<double> expected = {4, 1, 2, 0};
  EXPECT_EQ(out.indices.to_vector(), expected);
  // Run twice: the same answer (no dependence on thread scheduling).
  auto again = ops::retrieval_forward(q2, lmk2, params(S, 4, 0, 100));
  EXPECT_EQ(again.indices.to_vector(), expected);
}

TEST(Retrieval, WeightsSumToOneForSoftmaxAndAtMostOneForStickBreaking) {
  Tensor qr = randn64({2, 30, 2, 8}, 12, 2.0), lmk = randn64({2, 7, 2, 8}, 13);
  auto soft = ops::retrieval_forward(qr, lmk, params(4, 3));
  auto stick = ops::retrieval_forward(qr, lmk, params(4, 3, 0, 0, ops::ChunkWeighting::stick_breaking));
  for (int64_t r = 0; r < 2 * 30 * 2; ++r) {
    double ss = 0, sb = 0;
    bool any = soft.indices.get_flat(r * 3) >= 0;
    int64_t prev = std::numeric_limits<int64_t>::max();
    for (int64_t i = 0; i < 3; ++i) {
      ss += soft.weights.get_flat(r * 3 + i);
      sb += stick.weights.get_flat(r * 3 + i);
      EXPECT_GE(stick.weights.get_flat(r * 3 + i), 0.0);
      // Stick-breaking slots: chunk index strictly descending over the filled ones.
      int64_t c = int64_t(stick.indices.get_flat(r * 3 + i));
      if (c >= 0) {
        EXPECT_LT(c, prev);
        prev = c;
      }
      // Softmax slots: scores non-increasing.
      if (i > 0 && soft.indices.get_flat(r * 3 + i) >= 0)
        EXPECT_GE(soft.scores.get_flat(r * 3 + i - 1), soft.scores.get_flat(r * 3 + i));
    }
    EXPECT_NEAR(ss, any ? 1.0 : 0.0, 1e-12) << "row " << r;
    EXPECT_LE(sb, 1.0 + 1e-12) << "row " << r;
    if (!any) EXPECT_EQ(sb, 0.0);
  }
}

TEST(Retrieval, Bf16InputsComputeInF32) {
  Tensor qr = randn({1, 24, 2, 8}, 14), lmk = randn({1, 6, 2, 8}, 15);
  auto p = params(4, 2);
  auto out = ops::retrieval_forward(qr.to(DType::bf16), lmk.to(DType::bf16), p);
  EXPECT_EQ(out.weights.dtype(), DType::f32);
  expect_matches_naive(qr.to(DType::bf16).to(DType::f32), lmk.to(DType::bf16).to(DType::f32), p, 1e-5);
  Tensor dw = randn({1, 24, 2, 2}, 16);
  auto g = ops::retrieval_backward(dw, qr.to(DType::bf16), lmk.to(DType::bf16), out, p);
  EXPECT_EQ(g.dqr.dtype(), DType::bf16);
  EXPECT_EQ(g.dlandmarks.dtype(), DType::bf16);
  auto ref = ops::retrieval_backward(dw, qr.to(DType::bf16).to(DType::f32), lmk.to(DType::bf16).to(DType::f32), out, p);
  EXPECT_LT(relative_error(g.dqr, ref.dqr), 1e-2);
  EXPECT_LT(relative_error(g.dlandmarks, ref.dlandmarks), 1e-2);
}

namespace {

// Backward against the chain rule written per row (f64): ds_j = sum_i dweights_i * dw_i/ds_j with the Jacobian
// of each weighting spelled out, then dqr += scale ds_j lmk[c_j], dlandmarks[c_j] += scale ds_j qr.
void expect_backward_matches_chain_rule(int64_t B, int64_t L, int64_t H, int64_t D, int64_t C, int64_t K,
                                        int64_t S, int64_t W, uint64_t seed) {
  Tensor qr = randn64({B, L, H, D}, seed), lmk = randn64({B, C, H, D}, seed + 1),
         dw = randn64({B, L, H, K}, seed + 2);
  for (auto weighting : kBoth) {
    SCOPED_TRACE(::testing::Message() << "weighting " << int(weighting));
    auto p = params(S, K, W, 0, weighting);
    auto out = ops::retrieval_forward(qr, lmk, p);
    auto g = ops::retrieval_backward(dw, qr, lmk, out, p);
    double scale = 1 / std::sqrt(double(D));
    std::vector<double> dq(B * L * H * D, 0), dl(B * C * H * D, 0);
    std::vector<double> qv = qr.to_vector(), lv = lmk.to_vector();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < L; ++t)
        for (int64_t h = 0; h < H; ++h) {
          int64_t row = (b * L + t) * H + h;
          std::vector<double> w(K), s(K), gw(K), ds(K, 0);
          std::vector<int64_t> c(K);
          for (int64_t i = 0; i < K; ++i) {
            c[i] = int64_t(out.indices.get_flat(row * K + i));
            w[i] = out.weights.get_flat(row * K + i);
            s[i] = out.scores.get_flat(row * K + i);
            gw[i] = dw.get_flat(row * K + i);
          }
          for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < K; ++j) {
              if (c[i] < 0 || c[j] < 0) continue;
              double jac;
              if (weighting == ops::ChunkWeighting::softmax) {
                jac = w[i] * ((i == j) - w[j]);
              } else {
                double sj = 1 / (1 + std::exp(-s[j]));
                jac = i == j ? w[i] * (1 - sj) : (j < i ? -sj * w[i] : 0);
              }
              ds[j] += gw[i] * jac;
            }
          for (int64_t j = 0; j < K; ++j) {
            if (c[j] < 0) continue;
            int64_t lrow = (b * C + c[j]) * H + h;
            for (int64_t k = 0; k < D; ++k) {
              dq[row * D + k] += scale * ds[j] * lv[lrow * D + k];
              dl[lrow * D + k] += scale * ds[j] * qv[row * D + k];
            }
          }
        }
    int reported = 0;
    for (size_t i = 0; i < dq.size() && reported < 5; ++i)
      if (std::abs(g.dqr.get_flat(int64_t(i)) - dq[i]) > 1e-12 * (1 + std::abs(dq[i])))
        ADD_FAILURE() << "dqr[" << i << "] " << g.dqr.get_flat(int64_t(i)) << " vs " << dq[i], ++reported;
    for (size_t i = 0; i < dl.size() && reported < 5; ++i)
      if (std::abs(g.dlandmarks.get_flat(int64_t(i)) - dl[i]) > 1e-12 * (1 + std::abs(dl[i])))
        ADD_FAILURE() << "dlandmarks[" << i << "] " << g.dlandmarks.get_flat(int64_t(i)) << " vs " << dl[i],
            ++reported;
    for (int64_t t = 0; t < std::min(S, L); ++t)  // nothing selected before the first chunk completes
      for (int64_t k = 0; k < D; ++k) EXPECT_EQ(g.dqr.item({0, t, 0, k}), 0.0);
  }
}

}  // namespace

TEST(Retrieval, BackwardMatchesChainRulePerRow) {
  expect_backward_matches_chain_rule(1, 21, 2, 5, 5, 2, 4, 0, 17);
  // Big enough for the multithreaded paths (the kernels run serially below 2^16 multiply-adds).
  expect_backward_matches_chain_rule(2, 300, 2, 16, 75, 8, 4, 9, 21);
}

// With L = 16 and S = 4 nobody can see chunks 3 and 4 (complete at positions 16 and 20): zero gradient exactly.
TEST(Retrieval, UnselectedChunksGetZeroGradient) {
  Tensor qr = randn64({1, 16, 2, 5}, 17), lmk = randn64({1, 5, 2, 5}, 18);
  auto out = ops::retrieval_forward(qr, lmk, params(4, 2));
  auto g = ops::retrieval_backward(randn64({1, 16, 2, 2}, 20), qr, lmk, out, params(4, 2));
  double seen = 0;
  for (int64_t c = 0; c < 5; ++c)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t k = 0; k < 5; ++k) {
        if (c >= 3) EXPECT_EQ(g.dlandmarks.item({0, c, h, k}), 0.0);
        else seen += std::abs(g.dlandmarks.item({0, c, h, k}));
      }
  EXPECT_GT(seen, 0);
}

// Large enough that forward runs on the thread team, and the result does not depend on scheduling.
TEST(Retrieval, ParallelForwardMatchesNaiveAndIsRepeatable) {
  Tensor qr = randn64({2, 300, 2, 16}, 31), lmk = randn64({2, 75, 2, 16}, 32);
  for (auto weighting : kBoth) {
    auto p = params(4, 8, 9, 0, weighting);
    expect_matches_naive(qr, lmk, p);
    auto a = ops::retrieval_forward(qr, lmk, p), b = ops::retrieval_forward(qr, lmk, p);
    EXPECT_EQ(a.indices.to_vector(), b.indices.to_vector());
    EXPECT_EQ(max_abs_diff(a.weights, b.weights), 0.0);
  }
}

TEST(Retrieval, BadInputsGiveClearErrors) {
  Tensor qr = randn({1, 8, 2, 4}, 1), lmk = randn({1, 2, 2, 4}, 2);
  auto expect_error = [](auto&& fn, const std::string& fragment) {
    try {
      fn();
      ADD_FAILURE() << "expected an error containing: " << fragment;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error([&] { ops::retrieval_forward(qr, lmk, params(4, 0)); }, "retrieval_forward: topk must be positive, got 0");
  expect_error([&] { ops::retrieval_forward(qr, lmk, params(0, 2)); },
               "retrieval_forward: chunk_size must be positive, got 0");
  expect_error([&] { ops::retrieval_forward(qr, lmk, params(4, 2, -1)); }, "window must be >= 0");
  expect_error([&] { ops::retrieval_forward(qr, lmk, params(4, 2, 0, -3)); }, "q_start must be >= 0");
  expect_error([&] { ops::retrieval_forward(qr, randn({1, 2, 2, 5}, 3), params(4, 2)); },
               "'landmarks' has shape [1, 2, 2, 5], expected head dim dr = 4");
  expect_error([&] { ops::retrieval_forward(qr, randn({1, 2, 3, 4}, 3), params(4, 2)); },
               "'landmarks' has shape [1, 2, 3, 4], expected 2 heads");
  expect_error([&] { ops::retrieval_forward(qr, randn({2, 2, 2, 4}, 3), params(4, 2)); },
               "'landmarks' has shape [2, 2, 2, 4], expected batch 1");
  expect_error([&] { ops::retrieval_forward(Tensor::zeros({1, 8, 2, 4}, DType::i32), lmk, params(4, 2)); },
               "'qr' has dtype i32, expected a floating type");
  expect_error([&] { ops::retrieval_forward(qr, lmk.to(DType::f64), params(4, 2)); },
               "'qr' is f32 but 'landmarks' is f64");
  expect_error([&] { ops::retrieval_forward(randn({8, 2, 4}, 1), lmk, params(4, 2)); }, "expected 4 dims");
  auto out = ops::retrieval_forward(qr, lmk, params(4, 2));
  expect_error([&] { ops::retrieval_backward(randn({1, 8, 2, 3}, 4), qr, lmk, out, params(4, 2)); },
               "'dweights' has shape [1, 8, 2, 3], expected [1, 8, 2, 2]");
  auto broken = out;
  broken.indices = out.indices.clone();
  broken.indices.set({0, 7, 1, 0}, 2);  // chunk 2 does not exist
  expect_error([&] { ops::retrieval_backward(randn({1, 8, 2, 2}, 4), qr, lmk, broken, params(4, 2)); },
               "'fwd.indices' holds 2 at flat position 30, expected -1 or a chunk in [0, 2)");
}

TEST(Retrieval, NoLandmarksOrNoQueries) {
  auto out = ops::retrieval_forward(randn({1, 5, 2, 4}, 1), Tensor::zeros({1, 0, 2, 4}), params(1, 2));
  for (double v : out.indices.to_vector()) EXPECT_EQ(v, -1);
  for (double v : out.weights.to_vector()) EXPECT_EQ(v, 0);
  auto empty = ops::retrieval_forward(Tensor::zeros({1, 0, 2, 4}), randn({1, 3, 2, 4}, 2), params(1, 2));
  EXPECT_EQ(empty.indices.shape(), (Shape{1, 0, 2, 2}));
}

// More visible chunks than one score block (cpu::kRetrievalTileChunks = 2048): the running top-K carries across
// blocks. With S = 1 and window 3 the rows at positions 4097..4099 see 4095..4097 chunks: rows of one tile stop
// at different chunks of the last block.
TEST(Retrieval, ManyChunksSpanSeveralScoreBlocks) {
  Tensor qr = randn64({1, 3, 2, 4}, 41), lmk = randn64({1, 4500, 2, 4}, 42);
  for (auto weighting : kBoth) {
    expect_matches_naive(qr, lmk, params(1, 6, 0, 4200, weighting));
    expect_matches_naive(qr, lmk, params(1, 6, 3, 4097, weighting));
  }
}

TEST(Retrieval, NanScoresAreNeverSelected) {
  Tensor qr = randn({1, 1, 1, 4}, 51), lmk = randn({1, 4, 1, 4}, 52);
  lmk.set({0, 2, 0, 1}, std::nan(""));
  for (auto weighting : kBoth) {
    auto out = ops::retrieval_forward(qr, lmk, params(1, 4, 0, 10, weighting));
    std::vector<double> idx = out.indices.to_vector();
    EXPECT_EQ(std::count(idx.begin(), idx.end(), 2.0), 0);
    EXPECT_EQ(idx[3], -1.0);
    for (double w : out.weights.to_vector()) EXPECT_FALSE(std::isnan(w));
  }
}

#include "common/error_text.h"
#include "common/gradcheck.h"
#include "common/hsa_indices.h"
#include "ops/hsa_attention.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>

using namespace hsa;
using namespace hsa::testing;

namespace {

struct Problem {
  Tensor q, mem_k, mem_v, indices, weights;
  double scale;
};

// Random q, memory and weights; indices as a retrieval step would give them: token t picks up to K distinct
// chunks among the complete ones (c < t / S), -1 for the slots it cannot fill. Tokens t < S get none.
Problem make_problem(int64_t b, int64_t l, int64_t hq, int64_t h, int64_t d, int64_t s, int64_t k, uint64_t seed,
                     DType dtype = DType::f64) {
  int64_t c = std::max<int64_t>(l / s, 1);
  Problem p{randn({b, l, hq, d}, seed, 1.0, dtype),
            randn({b, c, s, h, d}, seed + 1, 1.0, dtype),
            randn({b, c, s, h, d}, seed + 2, 1.0, dtype),
            Tensor(),
            rand_uniform({b, l, h, k}, seed + 3, 0.1, 1.0, dtype),
            1.0 / std::sqrt(double(d))};
  p.indices = causal_indices(b, l, h, s, c, k, seed + 4);
  return p;
}

struct Naive {
  std::vector<double> out, lse;
};

// The definition, token by token, in double: per selected chunk a softmax over its S keys, mixed by the weights.
Naive naive_forward(const Problem& p) {
  int64_t b = p.q.dim(0), l = p.q.dim(1), hq = p.q.dim(2), d = p.q.dim(3), c = p.mem_k.dim(1), s = p.mem_k.dim(2),
          h = p.mem_k.dim(3), k = p.indices.dim(3), g = hq / h;
  std::vector<double> q = p.q.to_vector(), mk = p.mem_k.to_vector(), mv = p.mem_v.to_vector(),
                      w = p.weights.to_vector(), idx = p.indices.to_vector();
  Naive n;
  n.out.assign(b * l * hq * d, 0);
  n.lse.assign(b * l * hq * k, -std::numeric_limits<double>::infinity());
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t t = 0; t < l; ++t)
      for (int64_t hh = 0; hh < hq; ++hh) {
        int64_t r = hh / g;
        const double* qv = &q[((bi * l + t) * hq + hh) * d];
        for (int64_t i = 0; i < k; ++i) {
          int64_t ch = int64_t(idx[((bi * l + t) * h + r) * k + i]);
          if (ch < 0) continue;
          EXPECT_LT(ch, c);
          std::vector<double> score(s);
          double mx = -1e300;
          for (int64_t j = 0; j < s; ++j) {
            double dotv = 0;
            for (int64_t x = 0; x < d; ++x) dotv += qv[x] * mk[(((bi * c + ch) * s + j) * h + r) * d + x];
            score[j] = p.scale * dotv;
            mx = std::max(mx, score[j]);
          }
          double z = 0;
          for (double v : score) z += std::exp(v - mx);
          n.lse[((bi * l + t) * hq + hh) * k + i] = mx + std::log(z);
          double wi = w[((bi * l + t) * h + r) * k + i];
          for (int64_t j = 0; j < s; ++j) {
            double pj = std::exp(score[j] - mx) / z;
            for (int64_t x = 0; x < d; ++x)
              n.out[((bi * l + t) * hq + hh) * d + x] += wi * pj * mv[(((bi * c + ch) * s + j) * h + r) * d + x];
          }
        }
      }
  return n;
}

void expect_near_vec(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (double v : want)
    if (std::isfinite(v)) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isinf(want[i])) {
      ASSERT_EQ(got[i], want[i]) << what << "[" << i << "]";
      continue;
    }
    ASSERT_NEAR(got[i], want[i], tol * std::max(scale, 1.0)) << what << "[" << i << "]";
  }
}

void expect_matches_naive(const Problem& p, double tol) {
  ops::HsaOut out = ops::hsa_attention_forward(p.q, p.mem_k, p.mem_v, p.indices, p.weights, p.scale);
  Naive ref = naive_forward(p);
  EXPECT_EQ(out.out.shape(), p.q.shape());
  EXPECT_EQ(out.out.dtype(), p.q.dtype());
  expect_near_vec(out.out.to_vector(), ref.out, tol, "out");
  expect_near_vec(out.lse.to_vector(), ref.lse, tol, "lse");
}

}  // namespace

// L = 37 with S = 4: 9 complete chunks, not a multiple of S; tokens t < 4 select nothing, t < 12 fewer than K.
TEST(HsaAttention, ForwardMatchesNaiveGqa1) { expect_matches_naive(make_problem(2, 37, 3, 3, 8, 4, 3, 11), 1e-12); }

TEST(HsaAttention, ForwardMatchesNaiveGqa4) { expect_matches_naive(make_problem(2, 37, 8, 2, 8, 4, 3, 21), 1e-12); }

TEST(HsaAttention, ForwardF32MatchesNaive) {
  expect_matches_naive(make_problem(1, 91, 4, 1, 16, 8, 4, 31, DType::f32), 2e-5);
}

// Every token of a long sequence selects chunk 0 (in varying slots, next to other chunks): one (b, r, chunk) work
// item then holds several GEMM tiles (256 query rows each) at both GQA 1 and 4.
TEST(HsaAttention, RepeatedChunkAcrossManyTokens) {
  for (int64_t hq : {2, 8}) {
    Problem p = make_problem(1, 700, hq, 2, 8, 4, 3, 41);
    std::vector<int32_t> idx;
    for (int64_t t = 0; t < 700; ++t)
      for (int64_t r = 0; r < 2; ++r)
        for (int64_t i = 0; i < 3; ++i) idx.push_back(i == (t + r) % 3 ? 0 : int32_t((t * 7 + i * 3 + r) % 175));
    p.indices = Tensor::from_i32(idx, {1, 700, 2, 3});
    expect_matches_naive(p, 1e-12);
  }
}

// 1000 tokens with few, long chunks: the forward splits the sequence into several token blocks (256 tokens here).
TEST(HsaAttention, ForwardSpansSeveralTokenBlocks) {
  expect_matches_naive(make_problem(1, 1000, 8, 2, 8, 64, 4, 45), 1e-12);
}

TEST(HsaAttention, DuplicateChunkInOneTokenCountsPerSlot) {
  Problem p = make_problem(1, 5, 2, 1, 4, 2, 3, 51);
  p.indices = Tensor::from_i32({1, 1, -1, 0, 1, 1, 1, 0, 0, -1, -1, -1, 0, -1, 0}, {1, 5, 1, 3});
  expect_matches_naive(p, 1e-12);
}

TEST(HsaAttention, TokenWithNoChunksGetsZeros) {
  Problem p = make_problem(1, 12, 4, 2, 4, 4, 2, 61);
  ops::HsaOut out = ops::hsa_attention_forward(p.q, p.mem_k, p.mem_v, p.indices, p.weights, p.scale);
  double inf = std::numeric_limits<double>::infinity();
  for (int64_t t = 0; t < 4; ++t)  // t < S: no complete chunk
    for (int64_t h = 0; h < 4; ++h) {
      for (int64_t x = 0; x < 4; ++x) EXPECT_EQ(out.out.item({0, t, h, x}), 0.0) << "t=" << t;
      for (int64_t i = 0; i < 2; ++i) EXPECT_EQ(out.lse.item({0, t, h, i}), -inf);
    }
  // t = 5 sees one complete chunk: slot 0 is filled, slot 1 is empty.
  EXPECT_TRUE(std::isfinite(out.lse.item({0, 5, 0, 0})));
  EXPECT_EQ(out.lse.item({0, 5, 0, 1}), -inf);
  EXPECT_NE(out.out.item({0, 5, 0, 0}), 0.0);
}

// A first prefill segment: no chunk is complete yet (C = 0), every slot is empty.
TEST(HsaAttention, NoChunksAtAll) {
  Tensor q = randn({1, 3, 2, 4}, 1), mk = Tensor::zeros({1, 0, 4, 1, 4});
  Tensor idx = Tensor::from_i32(std::vector<int32_t>(6, -1), {1, 3, 1, 2});
  ops::HsaOut out = ops::hsa_attention_forward(q, mk, mk, idx, Tensor::zeros({1, 3, 1, 2}), 0.5);
  for (double v : out.out.to_vector()) EXPECT_EQ(v, 0.0);
  ops::HsaGrads g = ops::hsa_attention_backward(randn({1, 3, 2, 4}, 2), q, mk, mk, idx, Tensor::zeros({1, 3, 1, 2}),
                                                out, 0.5);
  for (double v : g.dq.to_vector()) EXPECT_EQ(v, 0.0);
  for (double v : g.dweights.to_vector()) EXPECT_EQ(v, 0.0);
  EXPECT_EQ(g.dmem_k.shape(), mk.shape());
}

TEST(HsaAttention, Bf16MatchesF32) {
  Problem p = make_problem(1, 64, 8, 2, 16, 8, 4, 71, DType::f32);
  auto bf = [](const Tensor& t) { return t.to(DType::bf16); };
  // The same (bf16-rounded) inputs in both precisions, so only the op's own rounding differs.
  Problem r{bf(p.q).to(DType::f32), bf(p.mem_k).to(DType::f32), bf(p.mem_v).to(DType::f32), p.indices,
            bf(p.weights).to(DType::f32), p.scale};
  ops::HsaOut ref = ops::hsa_attention_forward(r.q, r.mem_k, r.mem_v, r.indices, r.weights, r.scale);
  ops::HsaOut got = ops::hsa_attention_forward(bf(p.q), bf(p.mem_k), bf(p.mem_v), p.indices, bf(p.weights), p.scale);
  EXPECT_EQ(got.out.dtype(), DType::bf16);
  EXPECT_EQ(got.lse.dtype(), DType::f32);
  EXPECT_LT(relative_error(got.out, ref.out), 1e-2);
  Tensor dout = randn(p.q.shape(), 72);
  ops::HsaGrads gr = ops::hsa_attention_backward(dout, r.q, r.mem_k, r.mem_v, r.indices, r.weights, ref, r.scale);
  ops::HsaGrads gg = ops::hsa_attention_backward(bf(dout), bf(p.q), bf(p.mem_k), bf(p.mem_v), p.indices,
                                                 bf(p.weights), got, p.scale);
  EXPECT_EQ(gg.dq.dtype(), DType::bf16);
  EXPECT_EQ(gg.dweights.dtype(), DType::bf16);
  EXPECT_LT(relative_error(gg.dq, gr.dq), 1e-2);
  EXPECT_LT(relative_error(gg.dmem_k, gr.dmem_k), 1e-2);
  EXPECT_LT(relative_error(gg.dmem_v, gr.dmem_v), 1e-2);
  EXPECT_LT(relative_error(gg.dweights, gr.dweights), 1e-2);
}

// Fixed tiles and a fixed per-token summation order: bitwise the same results on 1 and 2 threads.
TEST(HsaAttention, ResultsDoNotDependOnThreadCount) {
  Problem p = make_problem(1, 300, 4, 2, 8, 4, 4, 81, DType::f32);
  Tensor dout = randn(p.q.shape(), 82);
  auto run = [&](int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    ops::HsaOut f = ops::hsa_attention_forward(p.q, p.mem_k, p.mem_v, p.indices, p.weights, p.scale);
    ops::HsaGrads g = ops::hsa_attention_backward(dout, p.q, p.mem_k, p.mem_v, p.indices, p.weights, f, p.scale);
    omp_set_num_threads(saved);
    return std::vector<Tensor>{f.out, g.dq, g.dmem_k, g.dmem_v, g.dweights};
  };
  std::vector<Tensor> one = run(1), two = run(2);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(max_abs_diff(one[i], two[i]), 0.0) << "result " << i;
}

// The chunk routing is a CUDA thing (ops/hsa_routing.h): the CPU forward hands back an empty one, and the CPU
// backwards give the same results with it as without.
TEST(HsaAttention, CpuHandsBackAnEmptyRoutingAndIgnoresIt) {
  Problem p = make_problem(1, 40, 4, 2, 8, 4, 3, 101, DType::f32);
  Tensor dout = randn(p.q.shape(), 102);
  ops::HsaRouting routing;
  ops::HsaOut with = ops::hsa_attention_forward(p.q, p.mem_k, p.mem_v, p.indices, p.weights, p.scale, &routing);
  EXPECT_TRUE(routing.empty());
  ops::HsaOut without = ops::hsa_attention_forward(p.q, p.mem_k, p.mem_v, p.indices, p.weights, p.scale);
  EXPECT_EQ(max_abs_diff(with.out, without.out), 0.0);
  EXPECT_EQ(max_abs_diff(with.lse, without.lse), 0.0);
  ops::HsaGrads a =
      ops::hsa_attention_backward(dout, p.q, p.mem_k, p.mem_v, p.indices, p.weights, with, p.scale, routing);
  ops::HsaGrads b = ops::hsa_attention_backward(dout, p.q, p.mem_k, p.mem_v, p.indices, p.weights, without, p.scale);
  EXPECT_EQ(max_abs_diff(a.dq, b.dq), 0.0);
  EXPECT_EQ(max_abs_diff(a.dmem_k, b.dmem_k), 0.0);
  EXPECT_EQ(max_abs_diff(a.dmem_v, b.dmem_v), 0.0);
  EXPECT_EQ(max_abs_diff(a.dweights, b.dweights), 0.0);
}

TEST(HsaAttention, BadInputsNameTheOp) {
  Problem p = make_problem(1, 20, 4, 2, 4, 4, 2, 91, DType::f32);
  auto fwd = [&](const Tensor& q, const Tensor& mk, const Tensor& mv, const Tensor& idx, const Tensor& w) {
    return error_of([&] { ops::hsa_attention_forward(q, mk, mv, idx, w, p.scale); });
  };
  auto has = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find("hsa_attention_forward"), std::string::npos) << msg;
    EXPECT_NE(msg.find(part), std::string::npos) << "expected '" << part << "' in: " << msg;
  };
  // Index past the end (C = 5) and below -1.
  std::vector<double> raw = p.indices.to_vector();
  std::vector<int32_t> bad(raw.begin(), raw.end());
  bad[2 * 2 * 7 + 3] = 5;  // t = 7, r = 1, i = 1
  has(fwd(p.q, p.mem_k, p.mem_v, Tensor::from_i32(bad, p.indices.shape()), p.weights),
      "'indices'[b=0, t=7, r=1, i=1] = 5 is outside [-1, C = 5)");
  bad[2 * 2 * 7 + 3] = -2;
  has(fwd(p.q, p.mem_k, p.mem_v, Tensor::from_i32(bad, p.indices.shape()), p.weights), "= -2 is outside");
  // HQ = 3 query heads with H = 2 KV heads.
  Tensor q3 = randn({1, 20, 3, 4}, 1);
  has(fwd(q3, p.mem_k, p.mem_v, p.indices, p.weights), "must be a multiple of KV heads H = 2");
  // Shape mismatches.
  has(fwd(p.q, p.mem_k, randn({1, 5, 4, 2, 3}, 2), p.indices, p.weights), "'mem_v' has shape [1, 5, 4, 2, 3]");
  has(fwd(p.q, randn({1, 5, 4, 2, 5}, 3), p.mem_v, p.indices, p.weights), "'mem_k' has shape [1, 5, 4, 2, 5]");
  has(fwd(p.q, p.mem_k, p.mem_v, p.indices, randn({1, 20, 2, 3}, 4)), "'weights' has shape [1, 20, 2, 3]");
  has(fwd(p.q, p.mem_k, p.mem_v, Tensor::from_i32(std::vector<int32_t>(40, -1), {1, 20, 1, 2}), p.weights),
      "'indices' has shape [1, 20, 1, 2]");
  has(fwd(p.q.view({20, 4, 4}), p.mem_k, p.mem_v, p.indices, p.weights), "'q' has shape [20, 4, 4]");
  // dtypes: i32 weights, float indices, mixed q / memory.
  has(fwd(p.q, p.mem_k, p.mem_v, p.indices, p.indices), "'weights' has dtype i32");
  has(fwd(p.q, p.mem_k, p.mem_v, p.weights, p.weights), "'indices' has dtype f32, expected i32");
  has(fwd(p.q, p.mem_k.to(DType::f64), p.mem_v, p.indices, p.weights), "'q' is f32 but 'mem_k' is f64");
  // K = 0 and S = 0.
  has(fwd(p.q, p.mem_k, p.mem_v, Tensor::from_i32({}, {1, 20, 2, 0}), Tensor::zeros({1, 20, 2, 0})),
      "top-K must be at least 1");
  Tensor s0 = Tensor::zeros({1, 5, 0, 2, 4});
  has(fwd(p.q, s0, s0, p.indices, p.weights), "chunk size S must be at least 1");
  // Backward: its own name, and the saved state and dout are checked too.
  ops::HsaOut out = ops::hsa_attention_forward(p.q, p.mem_k, p.mem_v, p.indices, p.weights, p.scale);
  std::string msg = error_of([&] {
    ops::hsa_attention_backward(randn({1, 20, 4, 5}, 5), p.q, p.mem_k, p.mem_v, p.indices, p.weights, out, p.scale);
  });
  EXPECT_NE(msg.find("hsa_attention_backward: 'dout' has shape [1, 20, 4, 5], expected [1, 20, 4, 4]"),
            std::string::npos)
      << msg;
  ops::HsaOut stale{out.out, Tensor::zeros({1, 20, 4, 3})};
  msg = error_of([&] {
    ops::hsa_attention_backward(randn({1, 20, 4, 4}, 5), p.q, p.mem_k, p.mem_v, p.indices, p.weights, stale,
                                p.scale);
  });
  EXPECT_NE(msg.find("hsa_attention_backward: 'fwd.lse' has shape [1, 20, 4, 3]"), std::string::npos) << msg;
  msg = error_of([&] {
    ops::hsa_attention_backward(randn({1, 20, 4, 4}, 5), p.q, p.mem_k, p.mem_v, Tensor::from_i32(bad, {1, 20, 2, 2}),
                                p.weights, out, p.scale);
  });
  EXPECT_NE(msg.find("hsa_attention_backward: 'indices'"), std::string::npos) << msg;
}

// HSA chunk attention on the CPU, forward and forward+backward, f32: B = 1, L = 4096, HQ = 8, H = 2 (GQA 4),
// D = 64, S = 64, K = 8, with causal indices as retrieval gives them (token t picks K distinct random chunks among
// the complete ones, c < t / S; -1 where fewer exist). Compare GFLOP/s with BM_sgemm from the same run.
// FLOPs per (token, query head, non-empty slot): forward 4*S*D (scores and P V); the backward recomputes the
// scores and adds dout V^T, dV, dK and dQ: 10*S*D more, so forward+backward counts 14*S*D.
//   build/hsa_bench --benchmark_filter='sgemm/1024|hsa' --benchmark_repetitions=3
//
// Recorded timings: docs/benchmarks.md and bench/results/.
#include "ops/hsa_attention.h"

#include <hsa/random.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>

namespace {

constexpr int64_t kBatch = 1, kLen = 4096, kQHeads = 8, kKvHeads = 2, kDim = 64, kChunk = 64, kTopk = 8;
constexpr int64_t kChunks = kLen / kChunk;

struct HsaBenchInputs {
  hsa::Tensor q = hsa::randn({kBatch, kLen, kQHeads, kDim}, 1);
  hsa::Tensor mem_k = hsa::randn({kBatch, kChunks, kChunk, kKvHeads, kDim}, 2);
  hsa::Tensor mem_v = hsa::randn({kBatch, kChunks, kChunk, kKvHeads, kDim}, 3);
  hsa::Tensor weights = hsa::rand_uniform({kBatch, kLen, kKvHeads, kTopk}, 4, 0.0, 0.25);
  hsa::Tensor dout = hsa::randn({kBatch, kLen, kQHeads, kDim}, 5);
  hsa::Tensor indices;
  int64_t filled = 0;  // non-empty (token, KV head, slot) entries
  double scale = 1.0 / std::sqrt(double(kDim));

  HsaBenchInputs() {
    std::vector<int32_t> idx;
    hsa::Rng rng(6);
    for (int64_t b = 0; b < kBatch; ++b)
      for (int64_t t = 0; t < kLen; ++t)
        for (int64_t r = 0; r < kKvHeads; ++r) {
          int64_t complete = t / kChunk;
          std::vector<int32_t> pool(complete);
          for (int64_t c = 0; c < complete; ++c) pool[c] = int32_t(c);
          // Partial Fisher-Yates: the first K entries become a uniform random K-subset.
          for (int64_t i = 0; i < std::min(kTopk, complete); ++i)
            std::swap(pool[i], pool[i + int64_t(rng.below(uint64_t(complete - i)))]);
          for (int64_t i = 0; i < kTopk; ++i) idx.push_back(i < complete ? pool[i] : -1);
          filled += std::min(kTopk, complete);
        }
    indices = hsa::Tensor::from_i32(idx, {kBatch, kLen, kKvHeads, kTopk});
  }
  double forward_flops() const { return 4.0 * kChunk * kDim * double(filled) * (kQHeads / kKvHeads); }
};

// Validate before timing: a few tokens of the output against the definition.
bool forward_is_correct(const HsaBenchInputs& in, const hsa::ops::HsaOut& out) {
  const int64_t g = kQHeads / kKvHeads;
  for (int64_t t : {int64_t(0), int64_t(100), kLen / 2 + 3, kLen - 1})
    for (int64_t h = 0; h < kQHeads; ++h) {
      int64_t r = h / g;
      std::vector<double> o(kDim, 0);
      for (int64_t i = 0; i < kTopk; ++i) {
        int64_t c = int64_t(in.indices.item({0, t, r, i}));
        if (c < 0) continue;
        std::vector<double> s(kChunk);
        double mx = -1e300, z = 0;
        for (int64_t j = 0; j < kChunk; ++j) {
          for (int64_t x = 0; x < kDim; ++x) s[j] += in.q.item({0, t, h, x}) * in.mem_k.item({0, c, j, r, x});
          s[j] *= in.scale;
          mx = std::max(mx, s[j]);
        }
        for (double v : s) z += std::exp(v - mx);
        for (int64_t j = 0; j < kChunk; ++j)
          for (int64_t x = 0; x < kDim; ++x)
            o[x] += in.weights.item({0, t, r, i}) * std::exp(s[j] - mx) / z * in.mem_v.item({0, c, j, r, x});
      }
      for (int64_t x = 0; x < kDim; ++x)
        if (std::abs(o[x] - out.out.item({0, t, h, x})) > 1e-4 * (1 + std::abs(o[x]))) return false;
    }
  return true;
}

void BM_hsa_attention_forward(benchmark::State& state) {
  HsaBenchInputs in;
  if (!forward_is_correct(in, hsa::ops::hsa_attention_forward(in.q, in.mem_k, in.mem_v, in.indices, in.weights,
                                                              in.scale))) {
    state.SkipWithError("hsa_attention_forward disagrees with the definition");
    return;
  }
  for (auto _ : state) {
    hsa::ops::HsaOut out = hsa::ops::hsa_attention_forward(in.q, in.mem_k, in.mem_v, in.indices, in.weights, in.scale);
    benchmark::DoNotOptimize(out.out.data<float>());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(in.forward_flops() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["tokens/s"] =
      benchmark::Counter(double(kBatch * kLen) * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_hsa_attention_forward_backward(benchmark::State& state) {
  HsaBenchInputs in;
  for (auto _ : state) {
    hsa::ops::HsaOut out = hsa::ops::hsa_attention_forward(in.q, in.mem_k, in.mem_v, in.indices, in.weights, in.scale);
    hsa::ops::HsaGrads g =
        hsa::ops::hsa_attention_backward(in.dout, in.q, in.mem_k, in.mem_v, in.indices, in.weights, out, in.scale);
    benchmark::DoNotOptimize(g.dq.data<float>());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(3.5 * in.forward_flops() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["tokens/s"] =
      benchmark::Counter(double(kBatch * kLen) * state.iterations(), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_hsa_attention_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_hsa_attention_forward_backward)->Unit(benchmark::kMillisecond)->UseRealTime();

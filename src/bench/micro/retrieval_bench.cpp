// HSA retrieval on the CPU, f32: B = 1, H = 2 retrieval heads of dr = 64, S = 64, K = 8; L = 4096 (C = 64 chunks)
// and L = 65536 (C = 1024) to show the scaling. Arg 0 = softmax, 1 = stick-breaking weights.
// FLOPs count the score dot products actually computed: 2 * dr per (query, head, visible chunk), rounded up to the
// 32-row tiles (the top-K scan and weights are O(C + K^2) per row on top of that).
//   build/hsa_bench --benchmark_filter='BM_retrieval|BM_sgemm' --benchmark_min_time=1 --benchmark_repetitions=3
//
// Recorded timings: docs/benchmarks.md and bench/results/.
// Where the time goes (perf, 1 thread, L=4096): ~60% the per-row top-K insertion walk, ~20% the score GEMMs. At
// L=65536 with K=8 the kernel's own code (mostly the walk) is ~33% of samples and the GEMMs ~29%; a faster selection is the next lever.
#include "ops/retrieval.h"

#include <hsa/random.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

constexpr int64_t kBatch = 1, kHeads = 2, kDim = 64, kChunk = 64, kTopk = 8;

struct RetrievalBenchInputs {
  int64_t seq_len;
  hsa::Tensor qr, landmarks, dweights;
  hsa::ops::RetrievalParams p{kChunk, kTopk};
  RetrievalBenchInputs(int64_t L, bool stick)
      : seq_len(L),
        qr(hsa::randn({kBatch, L, kHeads, kDim}, 1)),
        landmarks(hsa::randn({kBatch, L / kChunk, kHeads, kDim}, 2)),
        dweights(hsa::randn({kBatch, L, kHeads, kTopk}, 3)) {
    p.weighting = stick ? hsa::ops::ChunkWeighting::stick_breaking : hsa::ops::ChunkWeighting::softmax;
  }
};

double forward_flops(int64_t L) {
  double visible = 0;
  for (int64_t t = 0; t < L; ++t) visible += double(t / kChunk);
  return 2.0 * kBatch * kHeads * kDim * visible;
}

// Validate before timing: a few rows' chosen chunks and weights against the definition (scores in double).
bool forward_is_correct(const RetrievalBenchInputs& in, const hsa::ops::RetrievalOut& out) {
  const int64_t L = in.seq_len;
  double scale = 1 / std::sqrt(double(kDim));
  for (int64_t t : {int64_t(0), kChunk, L / 2 + 7, L - 1})
    for (int64_t h = 0; h < kHeads; ++h) {
      std::vector<std::pair<double, int64_t>> cand;
      for (int64_t c = 0; (c + 1) * kChunk <= t; ++c) {
        double s = 0;
        for (int64_t j = 0; j < kDim; ++j) s += in.qr.item({0, t, h, j}) * in.landmarks.item({0, c, h, j});
        cand.push_back({s * scale, c});
      }
      std::sort(cand.begin(), cand.end(),
                [](auto& a, auto& b) { return a.first != b.first ? a.first > b.first : a.second > b.second; });
      if (int64_t(cand.size()) > kTopk) cand.resize(kTopk);
      bool stick = in.p.weighting == hsa::ops::ChunkWeighting::stick_breaking;
      if (stick) std::sort(cand.begin(), cand.end(), [](auto& a, auto& b) { return a.second > b.second; });
      double sum = 0, rest = 1;
      std::vector<double> w(cand.size());
      for (size_t i = 0; i < cand.size(); ++i) {
        if (stick) {
          double sig = 1 / (1 + std::exp(-cand[i].first));
          w[i] = sig * rest;
          rest *= 1 - sig;
        } else {
          sum += w[i] = std::exp(cand[i].first);
        }
      }
      for (int64_t i = 0; i < kTopk; ++i) {
        bool filled = i < int64_t(cand.size());
        if (out.indices.item({0, t, h, i}) != (filled ? double(cand[i].second) : -1.0)) return false;
        double want = filled ? (stick ? w[i] : w[i] / sum) : 0.0;
        if (std::abs(out.weights.item({0, t, h, i}) - want) > 1e-5) return false;
      }
    }
  return true;
}

void BM_retrieval_forward(benchmark::State& state) {
  RetrievalBenchInputs in(state.range(0), state.range(1) != 0);
  if (!forward_is_correct(in, hsa::ops::retrieval_forward(in.qr, in.landmarks, in.p))) {
    state.SkipWithError("retrieval_forward disagrees with the definition");
    return;
  }
  for (auto _ : state) {
    hsa::ops::RetrievalOut out = hsa::ops::retrieval_forward(in.qr, in.landmarks, in.p);
    benchmark::DoNotOptimize(out.weights.data<float>());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(forward_flops(in.seq_len) * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["queries/s"] =
      benchmark::Counter(double(kBatch * in.seq_len) * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_retrieval_backward(benchmark::State& state) {
  RetrievalBenchInputs in(state.range(0), state.range(1) != 0);
  hsa::ops::RetrievalOut out = hsa::ops::retrieval_forward(in.qr, in.landmarks, in.p);
  for (auto _ : state) {
    hsa::ops::RetrievalGrads g = hsa::ops::retrieval_backward(in.dweights, in.qr, in.landmarks, out, in.p);
    benchmark::DoNotOptimize(g.dqr.data<float>());
  }
  state.counters["queries/s"] =
      benchmark::Counter(double(kBatch * in.seq_len) * state.iterations(), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_retrieval_forward)
    ->Args({4096, 0})
    ->Args({4096, 1})
    ->Args({65536, 0})
    ->ArgNames({"L", "stick"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_retrieval_backward)
    ->Args({4096, 0})
    ->Args({65536, 0})
    ->ArgNames({"L", "stick"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

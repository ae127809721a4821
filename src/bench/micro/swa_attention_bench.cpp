// Sliding-window attention on the CPU, f32: B = 1, HQ = 8 query heads over H = 2 KV heads, D = 64, at
// L = 4096 with window 512 and at L = 1024 with window 1024 (full causal). FLOPs count 4 * D per (query head,
// visible key) for the forward (q.k and p.v) and 2.5 times that for the backward (recomputed q.k, dout.v, and
// the dq, dk, dv products); forward+backward counts both. Compare GFLOP/s with BM_sgemm from the same run.
//   build/hsa_bench --benchmark_filter='BM_swa|BM_sgemm' --benchmark_min_time=1 --benchmark_repetitions=5
//
// Recorded timings: docs/benchmarks.md and bench/results/.
// Single-thread profile (perf): ~75% of the forward in sgemm, ~13% in the vectorised exp; the backward is ~85% GEMM.
#include "ops/swa_attention.h"

#include <hsa/random.h>

#include <benchmark/benchmark.h>

#include <cmath>
#include <limits>
#include <vector>

namespace {

constexpr int64_t kBatch = 1, kQHeads = 8, kKvHeads = 2, kDim = 64;

struct SwaBenchInputs {
  int64_t len, window;
  hsa::Tensor q, k, v, dout;
  hsa::ops::SwaParams p;
  SwaBenchInputs(int64_t l, int64_t w)
      : len(l),
        window(w),
        q(hsa::randn({kBatch, l, kQHeads, kDim}, 1)),
        k(hsa::randn({kBatch, l, kKvHeads, kDim}, 2)),
        v(hsa::randn({kBatch, l, kKvHeads, kDim}, 3)),
        dout(hsa::randn({kBatch, l, kQHeads, kDim}, 4)),
        p{w, 1.0 / std::sqrt(double(kDim))} {}
  // (query head, visible key) pairs.
  double pairs() const {
    double n = 0;
    for (int64_t i = 0; i < len; ++i) n += double(std::min(i + 1, window));
    return n * kBatch * kQHeads;
  }
};

// Validate before timing: a few output rows against the definition.
bool forward_is_correct(const SwaBenchInputs& in, const hsa::ops::SwaOut& out) {
  const int64_t group = kQHeads / kKvHeads;
  for (int64_t i : {int64_t(0), int64_t(1), in.len / 2, in.len - 1})
    for (int64_t h : {int64_t(0), kQHeads - 1}) {
      std::vector<double> s;
      double mx = -std::numeric_limits<double>::infinity();
      const int64_t j0 = std::max<int64_t>(0, i - in.window + 1);
      for (int64_t j = j0; j <= i; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < kDim; ++e) dot += in.q.item({0, i, h, e}) * in.k.item({0, j, h / group, e});
        s.push_back(dot * in.p.scale);
        mx = std::max(mx, s.back());
      }
      double sum = 0;
      for (double x : s) sum += std::exp(x - mx);
      for (int64_t e = 0; e < kDim; e += 7) {
        double o = 0;
        for (int64_t j = j0; j <= i; ++j) o += std::exp(s[size_t(j - j0)] - mx) / sum * in.v.item({0, j, h / group, e});
        if (std::abs(out.out.item({0, i, h, e}) - o) > 1e-4) return false;
      }
    }
  return true;
}

void set_counters(benchmark::State& state, double flops_per_iter, const SwaBenchInputs& in) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iter * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["tokens/s"] =
      benchmark::Counter(double(in.len * kBatch) * double(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_swa_forward(benchmark::State& state) {
  SwaBenchInputs in(state.range(0), state.range(1));
  if (!forward_is_correct(in, hsa::ops::swa_forward(in.q, in.k, in.v, in.p))) {
    state.SkipWithError("forward does not match the definition");
    return;
  }
  for (auto _ : state) {
    hsa::ops::SwaOut out = hsa::ops::swa_forward(in.q, in.k, in.v, in.p);
    benchmark::DoNotOptimize(out.out.raw_data());
  }
  set_counters(state, 4.0 * kDim * in.pairs(), in);
}

void BM_swa_backward(benchmark::State& state) {
  SwaBenchInputs in(state.range(0), state.range(1));
  hsa::ops::SwaOut fwd = hsa::ops::swa_forward(in.q, in.k, in.v, in.p);
  for (auto _ : state) {
    hsa::ops::SwaGrads g = hsa::ops::swa_backward(in.dout, in.q, in.k, in.v, fwd, in.p);
    benchmark::DoNotOptimize(g.dk.raw_data());
  }
  set_counters(state, 2.5 * 4.0 * kDim * in.pairs(), in);
}

void BM_swa_forward_backward(benchmark::State& state) {
  SwaBenchInputs in(state.range(0), state.range(1));
  for (auto _ : state) {
    hsa::ops::SwaOut fwd = hsa::ops::swa_forward(in.q, in.k, in.v, in.p);
    hsa::ops::SwaGrads g = hsa::ops::swa_backward(in.dout, in.q, in.k, in.v, fwd, in.p);
    benchmark::DoNotOptimize(g.dk.raw_data());
  }
  set_counters(state, 3.5 * 4.0 * kDim * in.pairs(), in);
}

}  // namespace

// Args: {L, window}.
BENCHMARK(BM_swa_forward)->Args({4096, 512})->Args({1024, 1024})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_swa_backward)->Args({4096, 512})->Args({1024, 1024})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_swa_forward_backward)
    ->Args({4096, 512})
    ->Args({1024, 1024})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

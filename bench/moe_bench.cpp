// MoE feed-forward on the CPU, forward and forward+backward, f32: N = 4096 tokens, dm = 256, E = 8 routed experts
// of width F = 256, top-2, one shared expert of width 256. Compare GFLOP/s with BM_sgemm from the same run.
// FLOPs count the expert GEMMs and the router: each (token, expert) pair costs 3 GEMM rows of 2 * dm * F forward
// and twice that backward.
//   build/hsa_bench --benchmark_filter='BM_moe|BM_sgemm' --benchmark_min_time=1 --benchmark_repetitions=3
//
// Measured at commit 116c812 (medians of 3; GFLOP/s of the op next to plain sgemm in the same run):
//   2 threads, AMD EPYC (shared dev box, noisy: +-20%):   forward 41.2 ms (118 GFLOP/s, 99k tokens/s),
//     forward+backward 152 ms (96 GFLOP/s, 27k tokens/s); sgemm 256/512/1024: 123/143/165 GFLOP/s.
//   16 threads, Intel Xeon (the device machine's CPU, OMP_NUM_THREADS=16): forward 22.4 ms (217 GFLOP/s,
//     183k tokens/s), forward+backward 65.5 ms (222 GFLOP/s, 63k tokens/s); sgemm 256/512/1024: 171/212/223.
//     With OMP_NUM_THREADS=8: forward 37.7 ms, forward+backward 102 ms; sgemm 1024: 118 GFLOP/s.
// So the grouped experts run at the BLAS ceiling of this size on 16 threads; on 2 threads the rest is mostly
// the scalar exp in cpu::swiglu (about 13% of the forward in perf) and the gathers/scatters.
#include "ops/moe.h"

#include <hsa/random.h>

#include <benchmark/benchmark.h>

#include <cmath>

namespace {

constexpr int64_t kTokens = 4096, kDim = 256, kExperts = 8, kTopk = 2, kFfn = 256, kShared = 1, kFfnShared = 256;

struct MoeBenchInputs {
  hsa::Tensor x = hsa::randn({kTokens, kDim}, 1);
  hsa::Tensor dy = hsa::randn({kTokens, kDim}, 2);
  hsa::ops::MoeWeights w{hsa::randn({kExperts, kDim}, 3, 0.1),
                         hsa::randn({kExperts, kFfn, kDim}, 4, 0.06),
                         hsa::randn({kExperts, kFfn, kDim}, 5, 0.06),
                         hsa::randn({kExperts, kDim, kFfn}, 6, 0.06),
                         hsa::randn({kShared, kFfnShared, kDim}, 7, 0.06),
                         hsa::randn({kShared, kFfnShared, kDim}, 8, 0.06),
                         hsa::randn({kShared, kDim, kFfnShared}, 9, 0.06)};
  hsa::ops::MoeParams p{kTopk, 0.01};
};

double forward_flops() {
  return 6.0 * kTokens * kDim * (kTopk * kFfn + kShared * kFfnShared) + 2.0 * kTokens * kExperts * kDim;
}

// Validate before timing: a few tokens of y against the definition, using the op's own routing.
bool forward_is_correct(const MoeBenchInputs& in, const hsa::ops::MoeOut& out) {
  auto expert = [&](const hsa::Tensor& g, const hsa::Tensor& u, const hsa::Tensor& d, int64_t e, int64_t t,
                    double scale, std::vector<double>& y) {
    for (int64_t f = 0; f < g.dim(1); ++f) {
      double a = 0, b = 0;
      for (int64_t c = 0; c < kDim; ++c) {
        a += in.x.item({t, c}) * g.item({e, f, c});
        b += in.x.item({t, c}) * u.item({e, f, c});
      }
      double h = a / (1 + std::exp(-a)) * b;
      for (int64_t c = 0; c < kDim; ++c) y[c] += scale * h * d.item({e, c, f});
    }
  };
  for (int64_t t : {int64_t(0), int64_t(1), kTokens / 2, kTokens - 1}) {
    std::vector<double> y(kDim, 0);
    for (int64_t j = 0; j < kTopk; ++j)
      expert(in.w.w_gate, in.w.w_up, in.w.w_down, int64_t(out.experts.item({t, j})), t, out.gates.item({t, j}), y);
    for (int64_t s = 0; s < kShared; ++s) expert(in.w.shared_gate, in.w.shared_up, in.w.shared_down, s, t, 1.0, y);
    for (int64_t c = 0; c < kDim; ++c)
      if (std::abs(y[c] - out.y.item({t, c})) > 1e-4 * (1 + std::abs(y[c]))) return false;
  }
  return true;
}

void BM_moe_forward(benchmark::State& state) {
  MoeBenchInputs in;
  if (!forward_is_correct(in, hsa::ops::moe_forward(in.x, in.w, in.p))) {
    state.SkipWithError("moe_forward disagrees with the definition");
    return;
  }
  for (auto _ : state) {
    hsa::ops::MoeOut out = hsa::ops::moe_forward(in.x, in.w, in.p);
    benchmark::DoNotOptimize(out.y.data<float>());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(forward_flops() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["tokens/s"] = benchmark::Counter(double(kTokens) * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_moe_forward_backward(benchmark::State& state) {
  MoeBenchInputs in;
  for (auto _ : state) {
    hsa::ops::MoeOut out = hsa::ops::moe_forward(in.x, in.w, in.p);
    hsa::ops::MoeGrads g = hsa::ops::moe_backward(in.dy, 1.0, in.x, in.w, in.p, out);
    benchmark::DoNotOptimize(g.dx.data<float>());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(3 * forward_flops() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["tokens/s"] = benchmark::Counter(double(kTokens) * state.iterations(), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_moe_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_moe_forward_backward)->Unit(benchmark::kMillisecond)->UseRealTime();

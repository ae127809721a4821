// MoE feed-forward on the CPU, forward and forward+backward, f32: N = 4096 tokens, dm = 256, E = 8 routed experts
// of width F = 256, top-2, one shared expert of width 256. Compare GFLOP/s with BM_sgemm from the same run.
// FLOPs count the expert GEMMs and the router: each (token, expert) pair costs 3 GEMM rows of 2 * dm * F forward
// and twice that backward.
//   build/hsa_bench --benchmark_filter='BM_moe|BM_sgemm' --benchmark_min_time=1 --benchmark_repetitions=3
//
// Recorded timings: docs/benchmarks.md and bench/results/.
// On 16 threads the grouped experts reach the BLAS ceiling of this size; on 2 threads the rest is mostly the
// scalar exp in cpu::swiglu and the gathers/scatters.
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

// ---- CUDA -------------------------------------------------------------------------------------------------------
// The same op on the GPU at a training-step size in bf16: N = 8192 tokens, dm = 1024, E = 64 routed experts of
// width 512, top-4, one shared expert of width 512 (the 8B-A1B shape scaled down in dm). Validated first: the
// first 256 tokens of y against the CPU op on those tokens (the op is per token, apart from the aux loss). Each
// timed iteration ends in cuda::synchronize().
//   build/hsa_bench --benchmark_filter='BM_cuda_moe' (tools/gpu-check --bench-filter BM_cuda_moe)
#include "cuda/runtime.h"

namespace {

constexpr int64_t kGpuTokens = 8192, kGpuDim = 1024, kGpuExperts = 64, kGpuTopk = 4, kGpuFfn = 512,
                  kGpuShared = 1, kGpuFfnShared = 512, kCheckTokens = 256;

struct MoeGpuInputs {
  hsa::DType dt = hsa::DType::bf16;
  hsa::Tensor x = hsa::randn({kGpuTokens, kGpuDim}, 1, 1.0, dt);
  hsa::Tensor dy = hsa::randn({kGpuTokens, kGpuDim}, 2, 1.0, dt);
  hsa::ops::MoeWeights w{hsa::randn({kGpuExperts, kGpuDim}, 3, 0.05, dt),
                         hsa::randn({kGpuExperts, kGpuFfn, kGpuDim}, 4, 0.03, dt),
                         hsa::randn({kGpuExperts, kGpuFfn, kGpuDim}, 5, 0.03, dt),
                         hsa::randn({kGpuExperts, kGpuDim, kGpuFfn}, 6, 0.03, dt),
                         hsa::randn({kGpuShared, kGpuFfnShared, kGpuDim}, 7, 0.03, dt),
                         hsa::randn({kGpuShared, kGpuFfnShared, kGpuDim}, 8, 0.03, dt),
                         hsa::randn({kGpuShared, kGpuDim, kGpuFfnShared}, 9, 0.03, dt)};
  hsa::ops::MoeParams p{kGpuTopk, 0.01};
};

hsa::ops::MoeWeights on_gpu(const hsa::ops::MoeWeights& w) {
  auto g = [](const hsa::Tensor& t) { return t.to(hsa::Device::cuda); };
  return {g(w.router), g(w.w_gate), g(w.w_up), g(w.w_down), g(w.shared_gate), g(w.shared_up), g(w.shared_down)};
}

double gpu_forward_flops() {
  return 6.0 * kGpuTokens * kGpuDim * (kGpuTopk * kGpuFfn + kGpuShared * kGpuFfnShared) +
         2.0 * kGpuTokens * kGpuExperts * kGpuDim;
}

// Relative error in norm of the GPU's first kCheckTokens rows of y against the CPU op on those tokens.
double gpu_check_error(const MoeGpuInputs& in, const hsa::ops::MoeOut& out) {
  hsa::Tensor x = in.x.slice(0, 0, kCheckTokens).contiguous();
  hsa::Tensor want = hsa::ops::moe_forward(x, in.w, in.p).y;
  hsa::Tensor got = out.y.to(hsa::Device::cpu).slice(0, 0, kCheckTokens).contiguous();
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    double a = got.get_flat(i), b = want.get_flat(i);
    diff += (a - b) * (a - b);
    norm += b * b;
  }
  return std::sqrt(diff / norm);
}

void BM_cuda_moe_forward_backward(benchmark::State& state) {
  if (hsa::cuda::device_count() == 0) {
    state.SkipWithError("no CUDA device");
    return;
  }
  MoeGpuInputs in;
  hsa::ops::MoeWeights w = on_gpu(in.w);
  hsa::Tensor x = in.x.to(hsa::Device::cuda), dy = in.dy.to(hsa::Device::cuda);
  double err = gpu_check_error(in, hsa::ops::moe_forward(x, w, in.p));
  if (!(err < 1e-2)) {
    state.SkipWithError("cuda moe_forward disagrees with the CPU op");
    return;
  }
  for (auto _ : state) {
    hsa::ops::MoeOut out = hsa::ops::moe_forward(x, w, in.p);
    hsa::ops::MoeGrads g = hsa::ops::moe_backward(dy, 1.0, x, w, in.p, out);
    hsa::cuda::synchronize();
  }
  state.counters["TFLOP/s"] =
      benchmark::Counter(3 * gpu_forward_flops() * state.iterations() / 1e12, benchmark::Counter::kIsRate);
  state.counters["tokens/s"] = benchmark::Counter(double(kGpuTokens) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["y_rel_err"] = err;
}

}  // namespace

BENCHMARK(BM_cuda_moe_forward_backward)->Unit(benchmark::kMillisecond)->UseRealTime();

// GPU ceilings and simple-op throughput (skipped without a GPU or a CUDA build): cuBLASLt GEMM through
// cuda::gemm (f32 exact and bf16 with f32 accumulation) and the memory-bound ops at a training-step size,
// reported as GB/s of bytes read + written. Each timed iteration ends in cuda::synchronize().
//   build/hsa_bench --benchmark_filter='BM_cuda' (tools/gpu-check --bench-filter BM_cuda on the device machine)
//
// Recorded timings: docs/benchmarks.md and bench/results/.
// The memory-bound kernels are plain grid-stride loops (no vector loads).
#include "cuda/gemm.h"
#include "cuda/runtime.h"
#include "ops/cross_entropy.h"
#include "ops/rmsnorm.h"
#include "ops/swiglu.h"

#include <hsa/random.h>

#include <benchmark/benchmark.h>

namespace {

bool no_gpu(benchmark::State& state) {
  if (hsa::cuda::device_count() > 0) return false;
  state.SkipWithError("no CUDA device");
  return true;
}

template <class T> void BM_cuda_gemm(benchmark::State& state) {
  if (no_gpu(state)) return;
  int64_t n = state.range(0);
  hsa::DType dtype = std::is_same_v<T, float> ? hsa::DType::f32 : hsa::DType::bf16;
  hsa::Tensor a = hsa::randn({n, n}, 1, 1.0, dtype).to(hsa::Device::cuda),
              b = hsa::randn({n, n}, 2, 1.0, dtype).to(hsa::Device::cuda),
              c = hsa::Tensor::empty({n, n}, dtype, hsa::Device::cuda);
  hsa::cuda::gemm<T>(false, true, n, n, n, 1.f, a.data<T>(), n, b.data<T>(), n, 0.f, c.data<T>(), n);  // warm up
  hsa::cuda::synchronize();
  for (auto _ : state) {
    hsa::cuda::gemm<T>(false, true, n, n, n, 1.f, a.data<T>(), n, b.data<T>(), n, 0.f, c.data<T>(), n);
    hsa::cuda::synchronize();
  }
  state.counters["TFLOP/s"] =
      benchmark::Counter(2.0 * n * n * n * state.iterations() / 1e12, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_cuda_gemm<float>)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_cuda_gemm<hsa::bf16>)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();

// RMSNorm forward + backward over [8192, 2048] bf16: reads x, w, dy (twice for the backward), writes y, dx.
void BM_cuda_rmsnorm(benchmark::State& state) {
  if (no_gpu(state)) return;
  const int64_t rows = 8192, dim = 2048;
  hsa::Tensor x = hsa::randn({rows, dim}, 1, 1.0, hsa::DType::bf16).to(hsa::Device::cuda),
              w = hsa::randn({dim}, 2, 1.0, hsa::DType::bf16).to(hsa::Device::cuda),
              dy = hsa::randn({rows, dim}, 3, 1.0, hsa::DType::bf16).to(hsa::Device::cuda);
  for (auto _ : state) {
    auto out = hsa::ops::rmsnorm_forward(x, w, 1e-5);
    auto g = hsa::ops::rmsnorm_backward(dy, x, w, out.rstd);
    hsa::cuda::synchronize();
  }
  double bytes = 2.0 * rows * dim * (2 + 5);  // forward: x in, y out; backward: dy, x twice (dx, dw), dx out
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_cuda_rmsnorm)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cuda_swiglu(benchmark::State& state) {
  if (no_gpu(state)) return;
  const int64_t n = int64_t(8192) * 5632;
  hsa::Tensor g = hsa::randn({n}, 1, 1.0, hsa::DType::bf16).to(hsa::Device::cuda),
              u = hsa::randn({n}, 2, 1.0, hsa::DType::bf16).to(hsa::Device::cuda);
  for (auto _ : state) {
    hsa::Tensor out = hsa::ops::swiglu_forward(g, u);
    hsa::cuda::synchronize();
  }
  state.counters["GB/s"] = benchmark::Counter(2.0 * n * 3 * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_cuda_swiglu)->Unit(benchmark::kMillisecond)->UseRealTime();

// Cross-entropy forward + backward over [4096, 32000] bf16 logits (forward ends in a host read of the loss).
void BM_cuda_cross_entropy(benchmark::State& state) {
  if (no_gpu(state)) return;
  const int64_t n = 4096, v = 32000;
  hsa::Tensor logits = hsa::randn({n, v}, 1, 1.0, hsa::DType::bf16).to(hsa::Device::cuda);
  std::vector<int32_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = int32_t((i * 7919) % v);
  hsa::Tensor targets = hsa::Tensor::from_i32(t, {n}).to(hsa::Device::cuda);
  for (auto _ : state) {
    auto out = hsa::ops::cross_entropy_forward(logits, targets);
    hsa::Tensor d = hsa::ops::cross_entropy_backward(1.0, logits, targets, out.lse);
    hsa::cuda::synchronize();
  }
  double bytes = 2.0 * n * v * 5;  // forward reads twice; backward reads once and writes once
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_cuda_cross_entropy)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

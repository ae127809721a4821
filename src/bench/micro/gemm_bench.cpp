// The CPU's matrix-multiply ceiling: BLAS sgemm at the sizes the tiny model and HSA use. Other benchmarks
// report their GFLOP/s next to this one, measured in the same run.
#include "cpu/gemm.h"

#include <hsa/random.h>

#include <benchmark/benchmark.h>

static void BM_sgemm(benchmark::State& state) {
  int64_t n = state.range(0);
  hsa::Tensor a = hsa::randn({n, n}, 1), b = hsa::randn({n, n}, 2), c = hsa::Tensor::zeros({n, n});
  for (auto _ : state) {
    hsa::cpu::gemm<float>(false, true, n, n, n, 1.0f, a.data<float>(), n, b.data<float>(), n, 0.0f, c.data<float>(),
                          n);
    benchmark::DoNotOptimize(c.data<float>());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * n * n * n * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_sgemm)->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

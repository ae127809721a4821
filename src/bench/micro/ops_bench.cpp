// The small CPU ops at the tiny model's sizes (configs/tiny.json: dm 128, 4x32 query heads, 2 KV heads, FFN 384,
// vocab 260) for one training batch of 8 x 512 tokens.
#include "ops/cross_entropy.h"
#include "ops/embedding.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"

#include <hsa/random.h>

#include <benchmark/benchmark.h>

using namespace hsa;

namespace {
constexpr int64_t kTokens = 8 * 512, kModel = 128, kFfn = 384, kVocab = 260;

void BM_linear_fwd_bwd(benchmark::State& state) {
  Tensor x = randn({kTokens, kModel}, 1), w = randn({kFfn, kModel}, 2), dy = randn({kTokens, kFfn}, 3);
  for (auto _ : state) {
    benchmark::DoNotOptimize(ops::linear_forward(x, w));
    benchmark::DoNotOptimize(ops::linear_backward(dy, x, w));
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(6.0 * kTokens * kModel * kFfn * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void BM_rmsnorm_fwd_bwd(benchmark::State& state) {
  Tensor x = randn({kTokens, kModel}, 1), w = randn({kModel}, 2), dy = randn({kTokens, kModel}, 3);
  for (auto _ : state) {
    auto out = ops::rmsnorm_forward(x, w, 1e-6);
    benchmark::DoNotOptimize(ops::rmsnorm_backward(dy, x, w, out.rstd));
  }
  state.SetBytesProcessed(state.iterations() * kTokens * kModel * 4 * 5);
}

void BM_rope_fwd(benchmark::State& state) {
  Tensor x = randn({8, 512, 4, 32}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(ops::rope_forward(x, 0, 10000.0));
  state.SetBytesProcessed(state.iterations() * x.nbytes() * 2);
}

void BM_swiglu_fwd_bwd(benchmark::State& state) {
  Tensor g = randn({kTokens, kFfn}, 1), u = randn({kTokens, kFfn}, 2), d = randn({kTokens, kFfn}, 3);
  for (auto _ : state) {
    benchmark::DoNotOptimize(ops::swiglu_forward(g, u));
    benchmark::DoNotOptimize(ops::swiglu_backward(d, g, u));
  }
  state.SetBytesProcessed(state.iterations() * g.nbytes() * 8);
}

void BM_embedding_fwd_bwd(benchmark::State& state) {
  Tensor table = randn({kVocab, kModel}, 1), dy = randn({8, 512, kModel}, 2);
  std::vector<int32_t> ids(kTokens);
  for (int64_t i = 0; i < kTokens; ++i) ids[i] = int32_t((i * 7919) % kVocab);
  Tensor idt = Tensor::from_i32(ids, {8, 512});
  for (auto _ : state) {
    benchmark::DoNotOptimize(ops::embedding_forward(table, idt));
    benchmark::DoNotOptimize(ops::embedding_backward(dy, idt, kVocab));
  }
}

void BM_cross_entropy_fwd_bwd(benchmark::State& state) {
  Tensor logits = randn({kTokens, kVocab}, 1);
  std::vector<int32_t> t(kTokens);
  for (int64_t i = 0; i < kTokens; ++i) t[i] = int32_t((i * 31) % kVocab);
  Tensor targets = Tensor::from_i32(t, {kTokens});
  for (auto _ : state) {
    auto out = ops::cross_entropy_forward(logits, targets);
    benchmark::DoNotOptimize(ops::cross_entropy_backward(1.0, logits, targets, out.lse));
  }
  state.SetBytesProcessed(state.iterations() * logits.nbytes() * 3);
}
}  // namespace

BENCHMARK(BM_linear_fwd_bwd)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_rmsnorm_fwd_bwd)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_rope_fwd)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_swiglu_fwd_bwd)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_embedding_fwd_bwd)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_cross_entropy_fwd_bwd)->Unit(benchmark::kMillisecond)->UseRealTime();

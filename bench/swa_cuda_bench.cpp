// Sliding-window attention on the GPU, bf16: B = 1, HQ = 16 query heads over H = 1 KV head, D = 128, windows 512
// and 4096, L = 4K .. 256K. Times the kernels (hsa::cuda::swa_forward / swa_backward on preallocated buffers) with
// CUDA events around each iteration. FLOPs count 4 * D per (query head, visible key) for the forward and 2.5
// times that for the backward (the convention of FlashAttention papers; the dq and dk/dv kernels each recompute
// S and dP, so the backward executes more than it is credited with). Validates a few forward rows before timing.
//   build/hsa_bench --benchmark_filter=BM_swa_cuda
// Compare with bench/sdpa_baseline.py (PyTorch dense causal attention at the same shapes).
//
// Measured at commit df0f86b (WMMA fragments blocked per warp) on the device machine, NVIDIA H100 80GB HBM3
// (sm_90, 132 SMs), default --benchmark_min_time; ms (TFLOP/s as counted above); forward rel. error ~1.1e-3:
//                   forward                        forward+backward
//   L         W=512          W=4096           W=512           W=4096
//   4096      0.289 (55.7)   1.18 (58.3)      1.88 (30.0)     10.4 (23.1)
//   16384     1.07 (63.0)    6.45 (74.5)      5.23 (45.3)     33.5 (50.3)
//   65536     4.27 (64.1)    27.8 (76.5)      21.0 (45.7)     140 (53.3)
//   262144    17.0 (64.6)    113 (77.0)       82.5 (46.6)     556 (54.9)
// Version 1 (one WMMA fragment per warp at a time) was 10-20% slower: forward 0.324 .. 129 ms, fwd+bwd 2.26 .. 668 ms.
// PyTorch 2.11 SDPA (flash, dense causal, K/V expanded to 16 heads), same machine, bench/sdpa_baseline.py:
//   L=16384: forward 1.73 ms (635 TFLOP/s), fwd+bwd 6.76 ms (569); L=65536: 29.5 ms (597), 108 ms (570).
// So these kernels run at ~1/8 of FlashAttention's FLOP rate: the window saves FLOPs (W=4096 at 64K: 1/8 of dense
// causal) but not yet time at W=4096 and L <= 64K. Next steps: mma.sync with register-resident accumulators
// (no shared-memory round trip of S and O per key tile), cp.async double buffering of K/V, and packing the G query
// heads of a KV head into one tile so K/V are staged once per group.
#ifdef HSA_WITH_CUDA
#include "cpu/swa_attention.h"
#include "cuda/runtime.h"
#include "cuda/swa_attention.h"

#include <hsa/tensor.h>

#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

namespace {

constexpr int64_t kQHeads = 16, kKvHeads = 1, kDim = 128;

// Uniform [-1, 1) bf16 values from xorshift64: generating 2^29 elements with hsa::randn would take a minute.
hsa::Tensor random_bf16(const hsa::Shape& shape, uint64_t seed) {
  hsa::Tensor t = hsa::Tensor::empty(shape, hsa::DType::bf16);
  hsa::bf16* p = t.data<hsa::bf16>();
  const int64_t n = t.numel();
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < (n + 65535) / 65536; ++blk) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + uint64_t(blk) * 0xBF58476D1CE4E5B9ull + 1;
    for (int64_t i = blk * 65536; i < std::min(n, (blk + 1) * 65536); ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      p[i] = hsa::bf16(float(double(x >> 11) * 0x1.0p-52 - 1.0));
    }
  }
  return t;
}

// Device inputs and outputs for one sequence length, kept across benchmarks of that length.
struct Buffers {
  int64_t len = 0;
  hsa::Tensor q_host, k_host, v_host;
  hsa::Tensor q, k, v, dout, out, lse, delta, dq, dk, dv;
};

Buffers& buffers(int64_t len) {
  static std::unique_ptr<Buffers> b;
  if (b && b->len == len) return *b;
  b.reset();  // free the previous length's device memory first
  b = std::make_unique<Buffers>();
  b->len = len;
  const hsa::Shape qs{1, len, kQHeads, kDim}, ks{1, len, kKvHeads, kDim};
  b->q_host = random_bf16(qs, 1);
  b->k_host = random_bf16(ks, 2);
  b->v_host = random_bf16(ks, 3);
  b->q = b->q_host.to(hsa::Device::cuda);
  b->k = b->k_host.to(hsa::Device::cuda);
  b->v = b->v_host.to(hsa::Device::cuda);
  b->dout = random_bf16(qs, 4).to(hsa::Device::cuda);
  b->out = hsa::Tensor::empty(qs, hsa::DType::bf16, hsa::Device::cuda);
  b->dq = hsa::Tensor::empty(qs, hsa::DType::bf16, hsa::Device::cuda);
  b->dk = hsa::Tensor::empty(ks, hsa::DType::bf16, hsa::Device::cuda);
  b->dv = hsa::Tensor::empty(ks, hsa::DType::bf16, hsa::Device::cuda);
  b->lse = hsa::Tensor::empty({1, len, kQHeads}, hsa::DType::f32, hsa::Device::cuda);
  b->delta = hsa::Tensor::empty({1, len, kQHeads}, hsa::DType::f32, hsa::Device::cuda);
  return *b;
}

hsa::cpu::SwaDims dims(int64_t len, int64_t window) { return {1, len, len, kQHeads, kKvHeads, kDim, window, 0, 0}; }
double scale() { return 1.0 / std::sqrt(double(kDim)); }

void forward(Buffers& b, const hsa::cpu::SwaDims& d) {
  hsa::cuda::swa_forward<hsa::bf16>(b.q.data<hsa::bf16>(), b.k.data<hsa::bf16>(), b.v.data<hsa::bf16>(),
                                    b.out.data<hsa::bf16>(), b.lse.data<float>(), d, scale());
}
void backward(Buffers& b, const hsa::cpu::SwaDims& d) {
  hsa::cuda::swa_backward<hsa::bf16>(b.dout.data<hsa::bf16>(), b.q.data<hsa::bf16>(), b.k.data<hsa::bf16>(),
                                     b.v.data<hsa::bf16>(), b.out.data<hsa::bf16>(), b.lse.data<float>(),
                                     b.delta.data<float>(), b.dq.data<hsa::bf16>(), b.dk.data<hsa::bf16>(),
                                     b.dv.data<hsa::bf16>(), d, scale());
}

// A few output rows against the definition in double; relative error in norm over those rows.
double forward_error(Buffers& b, int64_t window) {
  forward(b, dims(b.len, window));
  const hsa::Tensor out = b.out.to(hsa::Device::cpu);
  double num = 0, den = 0;
  for (int64_t i : {int64_t(0), int64_t(1), b.len / 2 + 3, b.len - 1})
    for (int64_t h : {int64_t(0), kQHeads - 1}) {
      const int64_t j0 = std::max<int64_t>(0, i - window + 1);
      std::vector<double> s;
      double mx = -INFINITY, sum = 0;
      for (int64_t j = j0; j <= i; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < kDim; ++e) dot += b.q_host.item({0, i, h, e}) * b.k_host.item({0, j, 0, e});
        s.push_back(dot * scale());
        mx = std::max(mx, s.back());
      }
      for (double x : s) sum += std::exp(x - mx);
      for (int64_t e = 0; e < kDim; ++e) {
        double o = 0;
        for (int64_t j = j0; j <= i; ++j) o += std::exp(s[size_t(j - j0)] - mx) / sum * b.v_host.item({0, j, 0, e});
        const double got = out.item({0, i, h, e});
        num += (got - o) * (got - o);
        den += o * o;
      }
    }
  return std::sqrt(num / den);
}

double forward_flops(int64_t len, int64_t window) {
  double pairs = 0;  // (query, visible key) pairs of one head
  for (int64_t i = 0; i < len; ++i) pairs += double(std::min(i + 1, window));
  return 4.0 * kDim * kQHeads * pairs;
}

template <class Fn>
void time_loop(benchmark::State& state, Fn&& fn) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  fn();  // warm-up (also reserves shared memory for the kernels)
  hsa::cuda::synchronize();
  for (auto _ : state) {
    cudaEventRecord(start);
    fn();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(double(ms) / 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

void set_counters(benchmark::State& state, double flops, int64_t len, double err) {
  state.counters["TFLOP/s"] = benchmark::Counter(flops * double(state.iterations()) / 1e12, benchmark::Counter::kIsRate);
  state.counters["tokens/s"] = benchmark::Counter(double(len) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["fwd_rel_err"] = err;
  state.SetLabel(hsa::cuda::device_description());
}

bool prepare(benchmark::State& state, Buffers*& b, double& err) {
  if (hsa::cuda::device_count() == 0) {
    state.SkipWithError("no CUDA device");
    return false;
  }
  b = &buffers(state.range(0));
  err = forward_error(*b, state.range(1));
  if (!(err < 2e-2)) {
    state.SkipWithError("forward does not match the definition");
    return false;
  }
  return true;
}

void BM_swa_cuda_forward(benchmark::State& state) {
  Buffers* b = nullptr;
  double err = 0;
  if (!prepare(state, b, err)) return;
  const hsa::cpu::SwaDims d = dims(b->len, state.range(1));
  time_loop(state, [&] { forward(*b, d); });
  set_counters(state, forward_flops(b->len, state.range(1)), b->len, err);
}

void BM_swa_cuda_forward_backward(benchmark::State& state) {
  Buffers* b = nullptr;
  double err = 0;
  if (!prepare(state, b, err)) return;
  const hsa::cpu::SwaDims d = dims(b->len, state.range(1));
  time_loop(state, [&] {
    forward(*b, d);
    backward(*b, d);
  });
  set_counters(state, 3.5 * forward_flops(b->len, state.range(1)), b->len, err);
}

void shapes(benchmark::internal::Benchmark* bm) {
  for (int64_t len : {4096, 16384, 65536, 262144})
    for (int64_t window : {512, 4096}) bm->Args({len, window});
}

}  // namespace

// Args: {L, window}. Inputs are cached per L (regenerated when L changes).
BENCHMARK(BM_swa_cuda_forward)->Apply(shapes)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_swa_cuda_forward_backward)->Apply(shapes)->UseManualTime()->Unit(benchmark::kMillisecond);
#endif  // HSA_WITH_CUDA

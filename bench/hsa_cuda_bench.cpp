// HSA on the GPU: chunk attention forward, forward+backward, and retrieval forward, bf16, at the paper's shape
// B = 1, HQ = 16, H = 1 (GQA 16), D = 128, S = 64, K = 8, dr = 128, L = 16K / 64K / 256K, C = L / S. Indices as
// retrieval gives them causally: token t picks K distinct random chunks among the t / S complete ones.
// Timed with CUDA events around the kernel-level calls (buffers preallocated; the routing's one small
// device-to-host copy is inside the timing), reported as manual time. FLOPs as in bench/hsa_attention_bench.cpp:
// forward 4*S*D per (token, query head, filled slot), forward+backward 14*S*D; retrieval 2*dr per visible
// (token, chunk) pair. GB/s counts the unavoidable bytes only (q, out, K/V once; dout, dq, dK, dV for the
// backward; qr, landmarks, outputs for retrieval), so it shows how far from the bandwidth floor a run is.
//   build/hsa_bench --benchmark_filter='cuda'
// Only built with CUDA.
//
// Measured on an NVIDIA H100 80GB HBM3 (tools/gpu-check --bench-filter cuda, bench/results/hsa_cuda_h100.json):
//                      16K        64K         256K      target at 64K   floor at 64K (max of FLOPs/peak, bytes/BW)
//   forward            3.51 ms    13.9 ms     54.9 ms   1.7 ms          0.34 ms (275 GFLOP at ~800 TFLOP/s)
//   forward+backward   19.3 ms    42.9 ms     171 ms    12 ms           1.2 ms (963 GFLOP)
//   retrieval forward  0.18 ms    0.74 ms     8.7 ms    1 ms            0.13 ms (8.6 GFLOP f32 at ~67 TFLOP/s)
// The attention kernels reach ~20 TFLOP/s: WMMA fragments reloaded from shared memory for every mma, no
// software pipelining (each 64-row tile runs load -> sync -> GEMM -> sync -> softmax -> sync -> GEMM -> write), and
// the per-entry scratch adds ~4 GB of HBM traffic at 64K (bytes floor of this design ~1.9 ms: it cannot meet the
// 1.7 ms target without keeping q tiles and outputs out of HBM). The backward keeps one block per chunk (it owns
// dK/dV, no atomics), so a chunk that every token selects (chunk 0 under causal selection) serialises on one SM:
// that is why 16K forward+backward costs half of 64K.
#ifdef HSA_WITH_CUDA
#include "cuda/hsa_attention.h"
#include "cuda/retrieval.h"
#include "cuda/runtime.h"

#include <hsa/random.h>
#include <hsa/tensor.h>

#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

namespace {

using hsa::DType;
using hsa::Device;
using hsa::Tensor;

constexpr int64_t kQHeads = 16, kKvHeads = 1, kDim = 128, kChunk = 64, kTopk = 8, kRetrievalDim = 128;

struct Inputs {
  int64_t len, chunks, filled = 0;
  Tensor q, k, v, w, dout, idx, lse, out, dq, dk, dv, dw, qr, lm, ridx, rw, rs;
  hsa::cpu::HsaDims dims;
  explicit Inputs(int64_t L) : len(L), chunks(L / kChunk) {
    auto dev = [](const Tensor& t) { return t.to(Device::cuda); };
    q = dev(hsa::randn({1, L, kQHeads, kDim}, 1, 1.0, DType::bf16));
    k = dev(hsa::randn({1, chunks, kChunk, kKvHeads, kDim}, 2, 1.0, DType::bf16));
    v = dev(hsa::randn({1, chunks, kChunk, kKvHeads, kDim}, 3, 1.0, DType::bf16));
    dout = dev(hsa::randn({1, L, kQHeads, kDim}, 4, 1.0, DType::bf16));
    w = dev(hsa::rand_uniform({1, L, kKvHeads, kTopk}, 5, 0.0, 0.25));
    std::vector<int32_t> ids;
    ids.reserve(size_t(L * kTopk));
    hsa::Rng rng(6);
    for (int64_t t = 0; t < L; ++t) {
      const int64_t complete = t / kChunk, n = std::min(kTopk, complete);
      std::vector<int32_t> pick;
      while (int64_t(pick.size()) < n) {  // rejection sampling of distinct chunks
        int32_t c = int32_t(rng.below(uint64_t(complete)));
        if (std::find(pick.begin(), pick.end(), c) == pick.end()) pick.push_back(c);
      }
      for (int64_t i = 0; i < kTopk; ++i) ids.push_back(i < n ? pick[size_t(i)] : -1);
      filled += n;
    }
    idx = dev(Tensor::from_i32(ids, {1, L, kKvHeads, kTopk}));
    out = Tensor::empty(q.shape(), DType::bf16, Device::cuda);
    lse = Tensor::empty({1, L, kQHeads, kTopk}, DType::f32, Device::cuda);
    dq = Tensor::empty(q.shape(), DType::bf16, Device::cuda);
    dk = Tensor::empty(k.shape(), DType::bf16, Device::cuda);
    dv = Tensor::empty(v.shape(), DType::bf16, Device::cuda);
    dw = Tensor::empty(w.shape(), DType::f32, Device::cuda);
    qr = dev(hsa::randn({1, L, kKvHeads, kRetrievalDim}, 7, 1.0, DType::bf16));
    lm = dev(hsa::randn({1, chunks, kKvHeads, kRetrievalDim}, 8, 1.0, DType::bf16));
    ridx = Tensor::empty({1, L, kKvHeads, kTopk}, DType::i32, Device::cuda);
    rw = Tensor::empty({1, L, kKvHeads, kTopk}, DType::f32, Device::cuda);
    rs = Tensor::empty({1, L, kKvHeads, kTopk}, DType::f32, Device::cuda);
    dims = hsa::cpu::HsaDims{1, L, kQHeads, kKvHeads, kDim, chunks, kChunk, kTopk};
  }
  double scale() const { return 1.0 / std::sqrt(double(kDim)); }
  void forward() {
    hsa::cuda::hsa_attention_forward(DType::bf16, q.raw_data(), k.raw_data(), v.raw_data(), idx.data<int32_t>(),
                                     w.data<float>(), scale(), dims, out.raw_data(), lse.data<float>());
  }
  void backward() {
    hsa::cuda::hsa_attention_backward(DType::bf16, dout.raw_data(), q.raw_data(), k.raw_data(), v.raw_data(),
                                      idx.data<int32_t>(), w.data<float>(), lse.data<float>(), scale(), dims,
                                      dq.raw_data(), dk.raw_data(), dv.raw_data(), dw.data<float>());
  }
  void retrieval() {
    hsa::cpu::RetrievalDims d{1, len, chunks, kKvHeads, kRetrievalDim, kChunk, kTopk, 0, 0, false};
    hsa::cuda::retrieval_forward(DType::bf16, qr.raw_data(), lm.raw_data(), ridx.data<int32_t>(), rw.data<float>(),
                                 rs.data<float>(), d, 1.0 / std::sqrt(double(kRetrievalDim)));
  }
};

Inputs& inputs(int64_t L) {  // one set per length, kept across benchmarks (allocation is not what is measured)
  static std::vector<std::unique_ptr<Inputs>> cache;
  for (auto& in : cache)
    if (in->len == L) return *in;
  cache.clear();  // free the previous length's buffers first (256K needs ~20 GB of scratch)
  cache.push_back(std::make_unique<Inputs>(L));
  return *cache.back();
}

template <class Fn>
void time_it(benchmark::State& state, Fn&& fn, double flops, double bytes) {
  if (hsa::cuda::device_count() == 0) {
    state.SkipWithError("no CUDA device");
    return;
  }
  fn();  // warm-up: first-call attribute setup and scratch pool growth
  cudaDeviceSynchronize();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  double total = 0;
  int64_t n = 0;
  for (auto _ : state) {
    cudaEventRecord(start);
    fn();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(ms * 1e-3);
    total += ms * 1e-3;
    ++n;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  state.counters["ms"] = total / double(n) * 1e3;
  state.counters["TFLOP/s"] = flops * double(n) / total / 1e12;
  state.counters["GB/s"] = bytes * double(n) / total / 1e9;
  state.SetLabel(hsa::cuda::device_description());
}

void BM_hsa_cuda_forward(benchmark::State& state) {
  if (hsa::cuda::device_count() == 0) return state.SkipWithError("no CUDA device");
  Inputs& in = inputs(state.range(0));
  const double flops = 4.0 * kChunk * kDim * double(in.filled) * (kQHeads / kKvHeads);
  const double bytes = 2.0 * 2 * in.len * kQHeads * kDim + 2.0 * 2 * in.chunks * kChunk * kKvHeads * kDim +
                       (4.0 * 2 + 4.0 * kQHeads) * in.len * kTopk;
  time_it(state, [&] { in.forward(); }, flops, bytes);
}

void BM_hsa_cuda_forward_backward(benchmark::State& state) {
  if (hsa::cuda::device_count() == 0) return state.SkipWithError("no CUDA device");
  Inputs& in = inputs(state.range(0));
  const double flops = 14.0 * kChunk * kDim * double(in.filled) * (kQHeads / kKvHeads);
  const double bytes = 2.0 * 6 * in.len * kQHeads * kDim + 2.0 * 2 * 3 * in.chunks * kChunk * kKvHeads * kDim +
                       (4.0 * 4 + 4.0 * 2 * kQHeads) * in.len * kTopk;
  time_it(state, [&] { in.forward(); in.backward(); }, flops, bytes);
}

void BM_retrieval_cuda_forward(benchmark::State& state) {
  if (hsa::cuda::device_count() == 0) return state.SkipWithError("no CUDA device");
  Inputs& in = inputs(state.range(0));
  double pairs = 0;
  for (int64_t t = 0; t < in.len; ++t) pairs += double(t / kChunk);
  const double flops = 2.0 * kRetrievalDim * pairs;
  const double bytes = 2.0 * (in.len + in.chunks) * kRetrievalDim + 12.0 * in.len * kTopk;
  time_it(state, [&] { in.retrieval(); }, flops, bytes);
}

#define HSA_CUDA_SIZES ->Arg(16384)->Arg(65536)->Arg(262144)->UseManualTime()->Unit(benchmark::kMillisecond)
BENCHMARK(BM_hsa_cuda_forward) HSA_CUDA_SIZES;
BENCHMARK(BM_hsa_cuda_forward_backward) HSA_CUDA_SIZES;
BENCHMARK(BM_retrieval_cuda_forward) HSA_CUDA_SIZES;

}  // namespace
#endif  // HSA_WITH_CUDA

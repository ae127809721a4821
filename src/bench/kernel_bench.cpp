#include "bench/kernel_bench.h"

#include "cuda/hsa_attention.h"
#include "cuda/retrieval.h"
#include "cuda/runtime.h"
#include "cuda/swa_attention.h"

#include <hsa/error.h>
#include <hsa/random.h>
#include <hsa/tensor.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>

namespace hsa::bench {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// Share of the free device memory a length may plan to use: the rest covers the allocator's size-class rounding,
// cuBLAS workspaces and the CUDA context's own growth.
constexpr double kUsableFraction = 0.9;
// The SWA forward must match the definition to this relative error (bf16 storage) before it is timed.
constexpr double kCheckTolerance = 2e-2;

// Uniform [low, high) values from xorshift64 in independent blocks (parallel, the same for any thread count), made
// on the host and copied to the device: hsa::randn over the 2^31 elements of q at 1M tokens would take minutes.
Tensor random_on_device(const Shape& shape, DType dtype, uint64_t seed, double low, double high) {
  Tensor t = Tensor::empty(shape, dtype);
  const int64_t n = t.numel(), block = 65536;
  bf16* const as_bf16 = dtype == DType::bf16 ? t.data<bf16>() : nullptr;
  float* const as_f32 = dtype == DType::bf16 ? nullptr : t.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < (n + block - 1) / block; ++b) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + uint64_t(b) * 0xBF58476D1CE4E5B9ull + 1;
    for (int64_t i = b * block; i < std::min(n, (b + 1) * block); ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      const float value = float(low + (high - low) * double(x >> 11) * 0x1.0p-53);
      if (as_bf16)
        as_bf16[i] = bf16(value);
      else
        as_f32[i] = value;
    }
  }
  return t.to(Device::cuda);
}

// i32 [1, L, H, K]: token t selects min(K, t / S) distinct complete chunks at random, -1 in the other slots, as
// causal retrieval does. Rejection sampling costs O(K) per token, so 1M tokens take a moment, not minutes.
Tensor causal_indices_on_device(const KernelShape& s, uint64_t seed) {
  std::vector<int32_t> ids;
  ids.reserve(size_t(s.len * s.kv_heads * s.topk));
  Rng rng(seed);
  std::vector<int32_t> pick;
  for (int64_t t = 0; t < s.len; ++t)
    for (int64_t h = 0; h < s.kv_heads; ++h) {
      const int64_t complete = visible_chunks(t, s.chunk_size, 0, s.chunks()), n = std::min(s.topk, complete);
      pick.clear();
      while (int64_t(pick.size()) < n) {
        const auto c = int32_t(rng.below(uint64_t(complete)));
        if (std::find(pick.begin(), pick.end(), c) == pick.end()) pick.push_back(c);
      }
      for (int64_t i = 0; i < s.topk; ++i) ids.push_back(i < n ? pick[size_t(i)] : -1);
    }
  return Tensor::from_i32(ids, {1, s.len, s.kv_heads, s.topk}).to(Device::cuda);
}

Tensor device_empty(const Shape& shape, DType dtype) { return Tensor::empty(shape, dtype, Device::cuda); }

// Every buffer of one length, allocated as the BufferPlan says (device_bytes_needed counts the same ones).
struct Buffers {
  KernelShape s;
  Tensor q, out, dout, dq;                                // [1, L, HQ, D] bf16, shared by HSA and SWA
  Tensor mem_k, mem_v, idx, w, lse, dmem_k, dmem_v, dw;   // HSA: [1, C, S, H, D], i32/f32 [1, L, H, K], lse [.., HQ, K]
  Tensor k, v, swa_lse, delta, dk, dv;                    // SWA: [1, L, H, D], f32 [1, L, HQ]
  Tensor qr, lm, ridx, rw, rs;                            // retrieval: [1, L, H, dr], [1, C, H, dr], [1, L, H, K]
  std::optional<double> swa_check;                        // measured once per length

  Buffers(const BufferPlan& p, const KernelShape& shape) : s(shape) {
    const int64_t L = s.len, C = s.chunks();
    const Shape qs{1, L, s.q_heads, s.head_dim}, slots{1, L, s.kv_heads, s.topk};
    if (p.hsa || p.swa) {
      q = random_on_device(qs, DType::bf16, 1, -1, 1);
      out = device_empty(qs, DType::bf16);
    }
    if (p.hsa_grad || p.swa_grad) {
      dout = random_on_device(qs, DType::bf16, 2, -1, 1);
      dq = device_empty(qs, DType::bf16);
    }
    if (p.hsa) {
      const Shape ks{1, C, s.chunk_size, s.kv_heads, s.head_dim};
      mem_k = random_on_device(ks, DType::bf16, 3, -1, 1);
      mem_v = random_on_device(ks, DType::bf16, 4, -1, 1);
      idx = causal_indices_on_device(s, 5);
      w = random_on_device(slots, DType::f32, 6, 0, 0.25);
      lse = device_empty({1, L, s.q_heads, s.topk}, DType::f32);
    }
    if (p.hsa_grad) {
      dmem_k = device_empty(mem_k.shape(), DType::bf16);
      dmem_v = device_empty(mem_v.shape(), DType::bf16);
      dw = device_empty(slots, DType::f32);
    }
    if (p.swa) {
      const Shape ks{1, L, s.kv_heads, s.head_dim};
      k = random_on_device(ks, DType::bf16, 7, -1, 1);
      v = random_on_device(ks, DType::bf16, 8, -1, 1);
      swa_lse = device_empty({1, L, s.q_heads}, DType::f32);
    }
    if (p.swa_grad) {
      dk = device_empty(k.shape(), DType::bf16);
      dv = device_empty(v.shape(), DType::bf16);
      delta = device_empty({1, L, s.q_heads}, DType::f32);
    }
    if (p.retrieval) {
      qr = random_on_device({1, L, s.kv_heads, s.retrieval_dim}, DType::bf16, 9, -1, 1);
      lm = random_on_device({1, C, s.kv_heads, s.retrieval_dim}, DType::bf16, 10, -1, 1);
      ridx = device_empty(slots, DType::i32);
      rw = device_empty(slots, DType::f32);
      rs = device_empty(slots, DType::f32);
    }
    cuda::synchronize();
  }

  double scale() const { return 1.0 / std::sqrt(double(s.head_dim)); }
  HsaDims hsa_dims() const {
    return {1, s.len, s.q_heads, s.kv_heads, s.head_dim, s.chunks(), s.chunk_size, s.topk};
  }
  SwaDims swa_dims() const { return {1, s.len, s.len, s.q_heads, s.kv_heads, s.head_dim, s.window, 0, 0}; }

  // Bad chunk indices (none here) would throw at the timing loop's cuda::synchronize().
  // routing: receives the forward's chunk routing, for hsa_backward (a training step sorts once per HSA layer).
  void hsa_forward(cuda::SharedRouting* routing = nullptr) {
    cuda::hsa_attention_forward(DType::bf16, q.raw_data(), mem_k.raw_data(), mem_v.raw_data(), idx.data<int32_t>(),
                                w.data<float>(), scale(), hsa_dims(), out.raw_data(), lse.data<float>(), routing);
  }
  // The last token alone, against the whole memory: its rows of q, indices, weights, out and lse.
  void hsa_decode() {
    const int64_t t = s.len - 1, q_row = t * s.q_heads * s.head_dim, slot_row = t * s.kv_heads * s.topk;
    HsaDims d = hsa_dims();
    d.len = 1;
    cuda::hsa_attention_forward(DType::bf16, q.data<bf16>() + q_row, mem_k.raw_data(), mem_v.raw_data(),
                                idx.data<int32_t>() + slot_row, w.data<float>() + slot_row, scale(), d,
                                out.data<bf16>() + q_row, lse.data<float>() + t * s.q_heads * s.topk);
  }
  void hsa_backward(const cuda::SharedRouting& routing) {
    cuda::hsa_attention_backward(DType::bf16, dout.raw_data(), q.raw_data(), mem_k.raw_data(), mem_v.raw_data(),
                                 idx.data<int32_t>(), w.data<float>(), lse.data<float>(), scale(), hsa_dims(),
                                 dq.raw_data(), dmem_k.raw_data(), dmem_v.raw_data(), dw.data<float>(),
                                 routing.get());
  }
  // All rows (the kernel the op picks, or the scalar one), or the last token alone against every landmark.
  void retrieval(cuda::RetrievalKernel kernel, bool decode) {
    RetrievalDims d{1, s.len, s.chunks(), s.kv_heads, s.retrieval_dim, s.chunk_size, s.topk, 0, 0, false};
    int64_t row = 0;
    if (decode) d.seq_len = 1, d.q_start = s.len - 1, row = s.len - 1;
    const int64_t q_off = row * s.kv_heads * s.retrieval_dim, slot_off = row * s.kv_heads * s.topk;
    cuda::retrieval_forward(DType::bf16, qr.data<bf16>() + q_off, lm.raw_data(), ridx.data<int32_t>() + slot_off,
                            rw.data<float>() + slot_off, rs.data<float>() + slot_off, d,
                            1.0 / std::sqrt(double(s.retrieval_dim)), kernel);
  }
  void swa_forward() {
    cuda::swa_forward<bf16>(q.data<bf16>(), k.data<bf16>(), v.data<bf16>(), out.data<bf16>(),
                            swa_lse.data<float>(), swa_dims(), scale());
  }
  void swa_backward() {
    cuda::swa_backward<bf16>(dout.data<bf16>(), q.data<bf16>(), k.data<bf16>(), v.data<bf16>(), out.data<bf16>(),
                             swa_lse.data<float>(), delta.data<float>(), dq.data<bf16>(), dk.data<bf16>(),
                             dv.data<bf16>(), swa_dims(), scale());
  }

  void run(Kernel kernel) {
    switch (kernel) {
      case Kernel::hsa_fwd: hsa_forward(); break;
      case Kernel::hsa_fwd_bwd: {
        cuda::SharedRouting routing;
        hsa_forward(&routing);
        hsa_backward(routing);
        break;
      }
      case Kernel::retrieval: retrieval(cuda::RetrievalKernel::automatic, false); break;
      case Kernel::retrieval_scalar: retrieval(cuda::RetrievalKernel::scalar, false); break;
      case Kernel::retrieval_decode: retrieval(cuda::RetrievalKernel::automatic, true); break;
      case Kernel::retrieval_decode_scalar: retrieval(cuda::RetrievalKernel::scalar, true); break;
      case Kernel::retrieval_mma: retrieval(cuda::RetrievalKernel::mma, false); break;
      case Kernel::retrieval_gated: retrieval(cuda::RetrievalKernel::gated, false); break;
      case Kernel::swa_fwd: swa_forward(); break;
      case Kernel::swa_fwd_bwd: swa_forward(), swa_backward(); break;
      case Kernel::hsa_decode: hsa_decode(); break;
    }
  }

  // Rows [first, first + count) of a device tensor whose rows hold `width` bf16 values, as doubles on the host.
  static std::vector<double> rows(const Tensor& t, int64_t first, int64_t count, int64_t width) {
    std::vector<bf16> host(size_t(count * width));
    cuda::copy(host.data(), false, t.data<bf16>() + first * width, true, host.size() * sizeof(bf16));
    std::vector<double> values(host.size());
    for (size_t i = 0; i < host.size(); ++i) values[i] = double(float(host[i]));
    return values;
  }

  // A few SWA forward rows (first, second, middle, last token; first and last head) against the definition in
  // double precision: relative error in norm over those rows.
  double check_swa_forward() {
    swa_forward();
    const int64_t D = s.head_dim, HQ = s.q_heads, H = s.kv_heads;
    double num = 0, den = 0;
    for (int64_t i : {int64_t(0), int64_t(1), s.len / 2 + 3, s.len - 1}) {
      const int64_t j0 = std::max<int64_t>(0, i - s.window + 1), n = i - j0 + 1;
      const std::vector<double> qi = rows(q, i, 1, HQ * D), oi = rows(out, i, 1, HQ * D);
      const std::vector<double> kj = rows(k, j0, n, H * D), vj = rows(v, j0, n, H * D);
      for (int64_t h : {int64_t(0), HQ - 1}) {
        const int64_t r = h / s.group();
        std::vector<double> score(static_cast<size_t>(n));
        double top = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < D; ++e) dot += qi[size_t(h * D + e)] * kj[size_t((j * H + r) * D + e)];
          score[size_t(j)] = dot * scale();
          top = std::max(top, score[size_t(j)]);
        }
        for (double x : score) sum += std::exp(x - top);
        for (int64_t e = 0; e < D; ++e) {
          double expect = 0;
          for (int64_t j = 0; j < n; ++j)
            expect += std::exp(score[size_t(j)] - top) / sum * vj[size_t((j * H + r) * D + e)];
          const double got = oi[size_t(h * D + e)];
          num += (got - expect) * (got - expect);
          den += expect * expect;
        }
      }
    }
    return std::sqrt(num / den);
  }
};

bool is_swa(Kernel k) { return k == Kernel::swa_fwd || k == Kernel::swa_fwd_bwd; }

}  // namespace

bool kernel_bench_available() { return cuda::built_with_cuda(); }

std::string kernel_bench_device() {
  HSA_CHECK(cuda::built_with_cuda(),
            "bench kernels: this hsa was built without the CUDA backend (nvcc not found, or -DHSA_CUDA=OFF); "
            "configure with CUDA on a machine with nvcc (tools/gpu-check does) to benchmark the kernels");
  HSA_CHECK(cuda::device_count() > 0, "bench kernels: no CUDA device is visible (hsa was built with CUDA, but "
                                      "cudaGetDeviceCount finds no GPU)");
  return cuda::device_description();
}

std::vector<Measurement> run_kernel_bench(const KernelBenchOptions& o, const std::optional<DevicePeak>& peak,
                                          const KernelBenchCallbacks& cb) {
  kernel_bench_device();  // throws without a GPU
  HSA_CHECK(o.repeats >= 1, "bench kernels: --repeats must be at least 1 (got {})", o.repeats);
  const BufferPlan plan = BufferPlan::of(o.kernels);
  std::vector<Measurement> results;
  auto emit = [&](Measurement m) {
    set_per_token(m, results);
    results.push_back(std::move(m));
    if (cb.on_result) cb.on_result(results.back());
  };
  auto note = [&](const std::string& text) {
    if (cb.on_note) cb.on_note(text);
  };
  std::unique_ptr<Buffers> buffers;
  for (int64_t len : o.lengths) {
    KernelShape shape = o.shape;
    shape.len = len;
    buffers.reset();  // the previous length's memory goes back to the driver before this one is planned
    cuda::empty_cache();
    const double need = device_bytes_needed(plan, shape), free = double(cuda::free_device_memory());
    if (need > kUsableFraction * free) {
      const std::string reason =
          fmt::format("needs about {:.1f} GiB of device memory (inputs, outputs, kernel scratch), {:.1f} GiB free",
                      need / kGiB, free / kGiB);
      for (Kernel k : o.kernels) emit(not_measured(k, shape, "skipped", reason, peak));
      continue;
    }
    note(fmt::format("L={}: building inputs ({:.1f} GiB planned, {:.1f} GiB free)", length_label(len), need / kGiB,
                     free / kGiB));
    try {
      buffers = std::make_unique<Buffers>(plan, shape);
    } catch (const Error& e) {
      for (Kernel k : o.kernels)
        emit(not_measured(k, shape, "skipped", fmt::format("could not allocate the inputs: {}", e.what()), peak));
      continue;
    }
    for (Kernel k : o.kernels) {
      try {
        if (is_swa(k)) {
          if (!buffers->swa_check) buffers->swa_check = buffers->check_swa_forward();
          HSA_CHECK(*buffers->swa_check < kCheckTolerance,
                    "swa forward does not match the definition: relative error {:.2e} on checked rows (limit {})",
                    *buffers->swa_check, kCheckTolerance);
        }
        Measurement m = measured(k, shape, cuda::time_calls_ms([&] { buffers->run(k); }, o.repeats), peak);
        if (is_swa(k)) m.check_rel_err = buffers->swa_check;
        emit(std::move(m));
      } catch (const Error& e) {
        emit(not_measured(k, shape, "error", e.what(), peak));
      }
    }
  }
  buffers.reset();
  cuda::empty_cache();
  return results;
}

}  // namespace hsa::bench

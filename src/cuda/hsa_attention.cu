// CUDA chunk attention (see hsa_attention.h): entry points, routing, the choice between the register kernels
// (bf16) and the generic ones, and the sum of the per-entry partials. The kernels of each code path are in
// hsa_attention_{fwd,fwd_mma,bwd,bwd_mma}.cu (overview: hsa_attention_kernels.cuh).
#include "cuda/hsa_attention.h"

#include "cuda/hsa_attention_kernels.cuh"
#include "cuda/hsa_decode.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <type_traits>

namespace hsa::cuda {

namespace {

using namespace hsa_attn;

// One block per (b, t, r) row of G*D outputs: out = sum over the filled slots, in slot order, of the entry's
// partial (zeros when all slots are empty). Also writes -inf lse (forward) or 0 dweights (backward) of empty slots.
// Memory-bound (it reads every entry's partial once: 2 GB at L = 64K in the benchmark shape), so each thread
// moves 16-byte vectors: G*D is a multiple of 16 elements and `part` is pool-aligned, so only `out` is checked.
template <class T>
__global__ void reduce_slots_kernel(const T* __restrict part, const int32_t* __restrict entry_of, int64_t G,
                                    int64_t D, int64_t K, T* __restrict out, float* lse, float* dweights) {
  constexpr int V = 16 / int(sizeof(T));
  const int64_t row = blockIdx.x, gd = G * D;
  const int32_t* eo = entry_of + row * K;
  if (reinterpret_cast<uintptr_t>(out) % 16 == 0) {
    for (int64_t x = int64_t(threadIdx.x) * V; x < gd; x += int64_t(blockDim.x) * V) {
      float acc[V] = {};
      for (int64_t i = 0; i < K; ++i) {
        const int32_t e = eo[i];
        if (e < 0) continue;
        const uint4 raw = *reinterpret_cast<const uint4*>(part + int64_t(e) * gd + x);
        const T* v = reinterpret_cast<const T*>(&raw);
        for (int j = 0; j < V; ++j) acc[j] += to_f32(v[j]);
      }
      uint4 packed;
      T* o = reinterpret_cast<T*>(&packed);
      for (int j = 0; j < V; ++j) o[j] = from_f32<T>(acc[j]);
      *reinterpret_cast<uint4*>(out + row * gd + x) = packed;
    }
  } else {
    for (int64_t x = threadIdx.x; x < gd; x += blockDim.x) {
      float acc = 0;
      for (int64_t i = 0; i < K; ++i) {
        const int32_t e = eo[i];
        if (e >= 0) acc += to_f32(part[int64_t(e) * gd + x]);
      }
      out[row * gd + x] = from_f32<T>(acc);
    }
  }
  for (int64_t x = threadIdx.x; x < K * G; x += blockDim.x) {
    const int64_t i = x % K, g = x / K;
    if (eo[i] >= 0) continue;
    if (lse) lse[(row * G + g) * K + i] = -INFINITY;
    if (dweights && g == 0) dweights[row * K + i] = 0.0f;
  }
}

// One block per output row, as many threads as the row has 16-byte vectors (a warp at least, 256 at most).
template <class T>
void reduce_slots(const T* part, const int32_t* entry_of, int64_t rows, const Dims& d, T* out, float* lse,
                  float* dweights) {
  const int64_t vectors = ceil_div(d.G * d.D * int64_t(sizeof(T)), int64_t(16));
  const unsigned threads = unsigned(std::clamp<int64_t>(ceil_div(vectors, int64_t(32)) * 32, 32, 256));
  reduce_slots_kernel<T><<<unsigned(rows), threads, 0, stream()>>>(part, entry_of, d.G, d.D, d.K, out, lse,
                                                                    dweights);
  check_launch("reduce_slots_kernel");
}

template <class T>
void forward_impl(const T* q, const T* mem_k, const T* mem_v, const int32_t* indices, const float* weights,
                  double scale, const HsaDims& hd, T* out, float* lse, int error_code, SharedRouting* keep) {
  const Dims d = make_dims<T>(hd, scale);
  auto built = std::make_shared<Routing>(build_routing(indices, hd.batch, d.L, d.H, d.K, d.C, error_code));
  const Routing& rt = *built;
  if (keep) *keep = built;
  const int64_t rows = hd.batch * d.L * d.H;
  if (rows == 0) return;
  DeviceBuffer<std::byte> part(int64_t(size_t(rt.slots) * d.G * d.D * sizeof(T)));
  // About 512 query rows per block: enough to amortise the chunk's K/V load, small enough to spread a popular
  // chunk over many SMs. Grid (split plan): slots * rows per entry / rows per block + items; in the benchmark shape
  // (bf16, HQ = 16, H = 1, D = 128, S = 64, K = 8: G = 16, 512 rows = 32 entries per block) 16384 + 1024 = 17408
  // blocks at L = 64K, 262144 + 16384 = 278528 at L = 1M (a 4-byte plan entry each).
  bool done = false;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (mma_fwd_fits(d)) {
      forward_mma(q, mem_k, mem_v, weights, d, rt, part.as<T>(), lse);
      done = true;
    }
  }
  if (!done) forward_generic<T>(q, mem_k, mem_v, weights, d, rt, part.as<T>(), lse);
  reduce_slots<T>(part.as<T>(), rt.entry_of, rows, d, out, lse, nullptr);
}

template <class T>
void backward_impl(const T* dout, const T* q, const T* mem_k, const T* mem_v, const int32_t* indices,
                   const float* weights, const float* lse, double scale, const HsaDims& hd, T* dq, T* dmem_k,
                   T* dmem_v, float* dweights, int error_code, const Routing* given) {
  const Dims d = make_dims<T>(hd, scale);
  Routing own;
  const Routing& rt = given_or_built(given, &own, indices, hd.batch, d.L, d.H, d.K, d.C, error_code);
  DeviceBuffer<std::byte> part(int64_t(size_t(rt.slots) * d.G * d.D * sizeof(T)));
  if (rt.items > 0) {
    bool done = false;
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      if (mma_bwd_supported(d)) {
        backward_mma(dout, q, mem_k, mem_v, weights, lse, d, rt, part.as<T>(), dmem_k, dmem_v, dweights);
        done = true;
      }
    }
    if (!done)
      backward_generic<T>(dout, q, mem_k, mem_v, weights, lse, d, rt, part.as<T>(), dmem_k, dmem_v, dweights);
  }
  const int64_t rows = hd.batch * d.L * d.H;
  if (rows > 0) {
    reduce_slots<T>(part.as<T>(), rt.entry_of, rows, d, dq, nullptr, dweights);
  }
}

}  // namespace

void hsa_attention_check_supported(const char* op, DType dtype, const HsaDims& hd) {
  HSA_CHECK(dtype == DType::f32 || dtype == DType::bf16, "{}: the cuda kernels take f32 or bf16, got {}", op,
            dtype_name(dtype));
  HSA_CHECK(hd.head_dim % 16 == 0 && hd.head_dim <= 256,
            "{}: the cuda kernels need a head dim D that is a multiple of 16 and <= 256, got {}", op, hd.head_dim);
  HSA_CHECK(hd.chunk_size % 16 == 0 && hd.chunk_size <= 64,
            "{}: the cuda kernels need a chunk size S that is a multiple of 16 and <= 64, got {}", op, hd.chunk_size);
  const int rows = dtype == DType::bf16 ? tile_rows<__nv_bfloat16>() : tile_rows<float>();
  HSA_CHECK(hd.group() <= rows, "{}: the cuda kernels need HQ / H <= {}, got {}", op, rows, hd.group());
  size_t smem = dtype == DType::bf16 ? std::max(fwd_smem_bytes<__nv_bfloat16>(make_dims<__nv_bfloat16>(hd, 1)),
                                                bwd_smem_bytes<__nv_bfloat16>(make_dims<__nv_bfloat16>(hd, 1)))
                                     : std::max(fwd_smem_bytes<float>(make_dims<float>(hd, 1)),
                                                bwd_smem_bytes<float>(make_dims<float>(hd, 1)));
  HSA_CHECK(int64_t(smem) <= max_smem_optin(),
            "{}: S = {}, D = {} in {} need {} bytes of shared memory per block, the device has {}", op,
            hd.chunk_size, hd.head_dim, dtype_name(dtype), smem, max_smem_optin());
}

void hsa_attention_forward(DType dtype, const void* q, const void* mem_k, const void* mem_v, const int32_t* indices,
                           const float* weights, double scale, const HsaDims& d, void* out, float* lse,
                           SharedRouting* routing) {
  if (routing) routing->reset();
  if (use_decode_path(d)) return hsa_decode_forward(dtype, q, mem_k, mem_v, indices, weights, scale, d, out, lse);
  static const int code = index_error_code("hsa_attention_forward", "indices");
  if (dtype == DType::bf16)
    return forward_impl(static_cast<const __nv_bfloat16*>(q), static_cast<const __nv_bfloat16*>(mem_k),
                        static_cast<const __nv_bfloat16*>(mem_v), indices, weights, scale, d,
                        static_cast<__nv_bfloat16*>(out), lse, code, routing);
  forward_impl(static_cast<const float*>(q), static_cast<const float*>(mem_k), static_cast<const float*>(mem_v),
               indices, weights, scale, d, static_cast<float*>(out), lse, code, routing);
}

void hsa_attention_backward(DType dtype, const void* dout, const void* q, const void* mem_k, const void* mem_v,
                            const int32_t* indices, const float* weights, const float* lse, double scale,
                            const HsaDims& d, void* dq, void* dmem_k, void* dmem_v, float* dweights,
                            const detail::Routing* routing) {
  using B16 = __nv_bfloat16;
  static const int code = index_error_code("hsa_attention_backward", "indices");
  if (dtype == DType::bf16)
    return backward_impl(static_cast<const B16*>(dout), static_cast<const B16*>(q), static_cast<const B16*>(mem_k),
                         static_cast<const B16*>(mem_v), indices, weights, lse, scale, d, static_cast<B16*>(dq),
                         static_cast<B16*>(dmem_k), static_cast<B16*>(dmem_v), dweights, code, routing);
  backward_impl(static_cast<const float*>(dout), static_cast<const float*>(q), static_cast<const float*>(mem_k),
                static_cast<const float*>(mem_v), indices, weights, lse, scale, d, static_cast<float*>(dq),
                static_cast<float*>(dmem_k), static_cast<float*>(dmem_v), dweights, code, routing);
}

}  // namespace hsa::cuda


// Device-side helpers shared by the simple kernels: f32 <-> storage conversion (bf16 is storage only: every
// kernel does its arithmetic in f32), grid sizing, block reductions, reporting bad input to the host, and the
// 16-byte pack loads, stores and loop of the memory-bound kernels.
#pragma once
#include "cuda/runtime.h"
#include "cuda/strided.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace hsa::cuda {

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);  // round to nearest even, as hsa::bf16 does on the CPU
}

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never more than the work needs.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(blocks, 65535LL * 8)));
}

// Sum and max over the 32 lanes of a full warp; every lane gets the result (the same bits: a butterfly).
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `scratch` is __shared__ float[32]. Returns after a barrier, so scratch may be reused by the caller.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  v = warp_sum(v);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.f;
  return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  v = warp_max(v);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

// Records the first bad value a kernel sees (see runtime.h, input_error_record); later ones are dropped.
__device__ __forceinline__ void report_input_error(long long* record, int code, long long index, long long value,
                                                   long long bound) {
  if (atomicCAS(reinterpret_cast<unsigned long long*>(record), 0ull, 1ull) == 0ull) {
    record[1] = code;
    record[2] = index;
    record[3] = value;
    record[4] = bound;
  }
}

}  // namespace hsa::cuda

#include <hsa/dtype.h>

#include <type_traits>

namespace hsa::cuda {

// The op-facing headers use hsa::bf16 (plain C++); kernels see the same bits as __nv_bfloat16.
template <class T> struct device_type { using type = T; };
template <> struct device_type<hsa::bf16> { using type = __nv_bfloat16; };
template <class T> using device_t = typename device_type<T>::type;

template <class T> device_t<T>* dev(T* p) { return reinterpret_cast<device_t<T>*>(p); }
template <class T> const device_t<T>* dev(const T* p) { return reinterpret_cast<const device_t<T>*>(p); }

}  // namespace hsa::cuda

namespace hsa::cuda {

// Scratch device memory for one op call, from the caching allocator (the one device allocator: its statistics
// count every buffer). Freeing right after queuing the kernels that use it is safe: whoever gets the block next
// queues behind them on stream(). DeviceBuffer<std::byte> holds bytes that kernels read as another type (as<U>).
template <class T> class DeviceBuffer {
 public:
  explicit DeviceBuffer(int64_t count) : p_(static_cast<T*>(device_malloc(sizeof(T) * size_t(count)))) {}
  ~DeviceBuffer() { device_free(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  template <class U> U* as() const { return reinterpret_cast<U*>(p_); }

 private:
  T* p_;
};

// Thread index and stride of a 1-D grid-stride loop, in 64 bits.
__device__ __forceinline__ int64_t global_thread() { return blockIdx.x * int64_t(blockDim.x) + threadIdx.x; }
__device__ __forceinline__ int64_t grid_threads() { return int64_t(gridDim.x) * blockDim.x; }

// Storage offset of the i-th element, in row-major order, of a strided view. I = uint32_t when the view has
// fewer than 2^32 elements: 32-bit divisions cost a fraction of 64-bit ones.
template <class I = int64_t> __device__ __forceinline__ int64_t strided_offset(const StridedLayout& view, I i) {
  int64_t offset = 0;
  for (int d = view.ndim - 1; d >= 0; --d) {
    const I extent = I(view.shape[d]);
    offset += int64_t(i % extent) * view.strides[d];
    i /= extent;
  }
  return offset;
}

// ---- 16-byte packs ------------------------------------------------------------------------------------------
// The memory-bound kernels move kPack<T> = 16 / sizeof(T) values (4 f32, 8 bf16) per access. A pointer qualifies
// when it is aligned to a whole pack (packs_aligned, checked on the host); otherwise the kernel runs width 1.
template <class T> constexpr int kPack = 16 / int(sizeof(T));

template <int Bytes> struct PackBits;
template <> struct PackBits<2> { using type = unsigned short; };
template <> struct PackBits<4> { using type = unsigned int; };
template <> struct PackBits<8> { using type = uint2; };
template <> struct PackBits<16> { using type = uint4; };

// W consecutive values at p as f32, in one access of W * sizeof(T) bytes (p aligned to it).
template <int W, class T> __device__ __forceinline__ void load_pack(const T* p, float (&out)[W]) {
  using Bits = typename PackBits<W * sizeof(T)>::type;
  const Bits bits = *reinterpret_cast<const Bits*>(p);
  T v[W];
  memcpy(v, &bits, sizeof bits);
#pragma unroll
  for (int k = 0; k < W; ++k) out[k] = to_f32(v[k]);
}

// Rounds W f32 values to T and stores them at p in one access (p aligned to W * sizeof(T) bytes).
template <int W, class T> __device__ __forceinline__ void store_pack(T* p, const float (&in)[W]) {
  using Bits = typename PackBits<W * sizeof(T)>::type;
  T v[W];
#pragma unroll
  for (int k = 0; k < W; ++k) v[k] = from_f32<T>(in[k]);
  Bits bits;
  memcpy(&bits, v, sizeof bits);
  *reinterpret_cast<Bits*>(p) = bits;
}

template <int W> using Width = std::integral_constant<int, W>;

// Grid-stride loop over n elements in packs of V: body(i, Width<V>()) for the pack starting at element i, then
// body(i, Width<1>()) for each of the last n % V elements. packed = false runs everything at width 1 (for a pointer
// that is not pack-aligned). The body reads its width as `constexpr int W = decltype(width)::value`.
template <int V, class Body> __device__ __forceinline__ void for_each_pack(int64_t n, bool packed, Body body) {
  if (!packed) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) body(i, Width<1>());
    return;
  }
  const int64_t packs = n / V;
  for (int64_t p = global_thread(); p < packs; p += grid_threads()) body(p * V, Width<V>());
  if (V > 1 && global_thread() < n - packs * V) body(packs * V + global_thread(), Width<1>());
}

// Host side: every pointer aligned to a pack of V of its own element type.
template <int V, class... T> bool packs_aligned(const T*... p) {
  return ((reinterpret_cast<uintptr_t>(p) % (V * sizeof(T)) == 0) && ...);
}

// Blocks for a for_each_pack loop over n elements.
inline unsigned grid_for_packs(int64_t n, int pack, int threads) { return grid_for((n + pack - 1) / pack, threads); }

// out[i] = f(a[i], b[i]) in f32 for n elements, in packs where every pointer allows: the one kernel behind the
// element-wise binary ops (add, add_scaled, swiglu forward). f is a functor, float(float, float).
template <class T, class F>
__global__ void zip_packs_kernel(const T* a, const T* b, T* out, int64_t n, bool packed, F f) {
  for_each_pack<kPack<T>>(n, packed, [=](int64_t i, auto width) {
    constexpr int W = decltype(width)::value;
    float x[W], y[W];
    load_pack<W>(a + i, x);
    load_pack<W>(b + i, y);
#pragma unroll
    for (int k = 0; k < W; ++k) x[k] = f(x[k], y[k]);
    store_pack<W>(out + i, x);
  });
}

// Host side of zip_packs_kernel on stream(); `what` names it in a launch error.
template <class T, class F> void zip_packs(const T* a, const T* b, T* out, int64_t n, F f, const char* what) {
  if (n == 0) return;
  const bool packed = packs_aligned<kPack<T>>(a, b, out);
  zip_packs_kernel<<<grid_for_packs(n, kPack<T>, 256), 256, 0, stream()>>>(a, b, out, n, packed, f);
  check_launch(what);
}

}  // namespace hsa::cuda

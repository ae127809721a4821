// Device-side helpers of the HSA kernels (not a public header): the stream they launch on, stream-ordered scratch
// buffers, and the chunk-major routing (entries grouped by the chunk they selected) that the chunk attention and
// the retrieval backward share.
//   indices i32 [B, L, H, K] (-1 = empty slot); entry = one (b, t, h, slot) with a chunk; flat f = ((b*L+t)*H+h)*K+i.
//   item = (b*H + h)*C + c: one (batch, KV head, chunk) triple.
#pragma once
#include <hsa/error.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

namespace hsa::cuda::detail {

inline void check_cuda(cudaError_t status, const char* what) {
  HSA_CHECK(status == cudaSuccess, "CUDA error in {}: {}", what, cudaGetErrorString(status));
}

// Every HSA kernel launches here. The default stream for now; the runtime's stream replaces it in one place.
inline cudaStream_t stream() { return 0; }

// Scratch memory from the stream-ordered pool (cudaMallocAsync): freed without a device synchronisation and
// reused by the next call, so per-call temporaries cost no cudaMalloc.
class Scratch {
 public:
  explicit Scratch(size_t bytes);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T> T* as() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
};

// Entries grouped by item, stable (ascending flat index inside an item): a radix sort on the item key, which is
// itself a counting sort (histogram, scan, scatter) and keeps equal keys in input order, so every later sum over
// an item's entries has a fixed order. Empty slots sort last under the key B*H*C.
struct Routing {
  int64_t slots = 0;   // B*L*H*K: the entry arrays' capacity; valid entries are the prefix [0, begin[items])
  int64_t items = 0;   // B*H*C
  int32_t* flat = nullptr;      // [slots] flat index of entry e
  int32_t* begin = nullptr;     // [items + 1] first entry of each item
  int32_t* entry_of = nullptr;  // [slots] entry of flat index f, -1 for an empty slot
  int64_t max_item_entries = 0;  // host copy: the largest item
  int64_t first_bad = -1, last_bad = -1;  // host copy: flat positions of indices outside [-1, C), or -1
  int32_t first_bad_value = 0, last_bad_value = 0;
  std::unique_ptr<Scratch> storage;  // owns the arrays above
};

// Builds the routing and copies its small statistics to the host (one synchronising copy, which is also how the
// indices are validated without reading them on the host). B, L, H, K, C as above; needs B*L*H*K < 2^31.
// When an index is bad the arrays are unspecified (the caller reports first_bad or last_bad and stops).
Routing build_routing(const int32_t* indices, int64_t B, int64_t L, int64_t H, int64_t K, int64_t C);

// The shared memory one block may opt in to on the current device (bytes; read once per process).
int max_smem_optin();

// Element conversions.
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

// Max and sum over the 32 lanes of a full warp; every lane gets the result.
__device__ __forceinline__ float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float warp_sum(float x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace hsa::cuda::detail

#include "cuda/copy.h"

#include "cuda/kernel_util.cuh"

namespace hsa::cuda {

namespace {

// The dtype is a kernel argument rather than a template parameter: one kernel covers every pair, and the branch
// is uniform across the grid, so it costs nothing next to the memory traffic.
__device__ __forceinline__ double load_as_double(const void* base, DType dtype, int64_t offset) {
  switch (dtype) {
    case DType::f32: return static_cast<const float*>(base)[offset];
    case DType::f64: return static_cast<const double*>(base)[offset];
    case DType::i32: return static_cast<const int32_t*>(base)[offset];
    case DType::bf16: return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[offset]);
  }
  return 0;
}

__device__ __forceinline__ void store_double(void* base, DType dtype, int64_t offset, double value) {
  switch (dtype) {
    case DType::f32: static_cast<float*>(base)[offset] = static_cast<float>(value); break;
    case DType::f64: static_cast<double*>(base)[offset] = value; break;
    case DType::i32: static_cast<int32_t*>(base)[offset] = static_cast<int32_t>(value); break;
    // Through f32 first, as the CPU's bf16::from_float does, so both devices round identically.
    case DType::bf16: static_cast<__nv_bfloat16*>(base)[offset] = __float2bfloat16_rn(static_cast<float>(value)); break;
  }
}

__global__ void copy_strided_kernel(void* dst, DType dst_dtype, StridedLayout dst_layout, const void* src,
                                    DType src_dtype, StridedLayout src_layout, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads())
    store_double(dst, dst_dtype, strided_offset(dst_layout, i),
                 load_as_double(src, src_dtype, strided_offset(src_layout, i)));
}

__global__ void fill_strided_kernel(void* dst, DType dtype, StridedLayout layout, double value, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) store_double(dst, dtype, strided_offset(layout, i), value);
}

int64_t numel_of(const StridedLayout& l) {
  int64_t n = 1;
  for (int d = 0; d < l.ndim; ++d) n *= l.shape[d];
  return n;
}

}  // namespace

void copy_strided(void* dst, DType dst_dtype, const StridedLayout& dst_layout, const void* src, DType src_dtype,
                  const StridedLayout& src_layout) {
  int64_t n = numel_of(dst_layout);
  HSA_CHECK(n == numel_of(src_layout), "cuda::copy_strided: {} destination elements but {} source elements", n,
            numel_of(src_layout));
  if (n == 0) return;
  copy_strided_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dst, dst_dtype, dst_layout, src, src_dtype, src_layout,
                                                              n);
  check_launch("copy_strided_kernel");
}

void fill_strided(void* dst, DType dtype, const StridedLayout& layout, double value) {
  int64_t n = numel_of(layout);
  if (n == 0) return;
  fill_strided_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dst, dtype, layout, value, n);
  check_launch("fill_strided_kernel");
}

}  // namespace hsa::cuda

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

// The fast path for f32/bf16 pairs whose innermost axis (after merge_axes) is contiguous on both sides: rows of
// `inner` elements at the offsets of the outer axes (dst_outer, src_outer: the same shape), copied in packs along
// the row when packed (inner, the outer strides and both pointers pack-aligned). Covers clones, dtype
// conversions, and slices and concatenations along any axis (a permutation that keeps the last axis too).
// Index arithmetic in I (uint32_t below 2^32 elements).
template <class S, class D, class I>
__global__ void copy_rows_kernel(D* dst, StridedLayout dst_outer, const S* src, StridedLayout src_outer,
                                 int64_t inner, int64_t n, bool packed) {
  constexpr int V = kPack<S> < kPack<D> ? kPack<S> : kPack<D>;
  for_each_pack<V>(n, packed, [&](int64_t i, auto width) {  // [&]: the layouts stay kernel parameters
    constexpr int W = decltype(width)::value;
    const I row = I(i) / I(inner), col = I(i) - row * I(inner);
    float v[W];
    load_pack<W>(src + strided_offset(src_outer, row) + col, v);
    store_pack<W>(dst + strided_offset(dst_outer, row) + col, v);
  });
}

__global__ void fill_strided_kernel(void* dst, DType dtype, StridedLayout layout, double value, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) store_double(dst, dtype, strided_offset(layout, i), value);
}

int64_t numel_of(const StridedLayout& l) {
  int64_t n = 1;
  for (int d = 0; d < l.ndim; ++d) n *= l.shape[d];
  return n;
}

// Drops size-1 axes and merges neighbouring axes that are contiguous with each other on both sides, so a
// contiguous copy becomes one axis and a slice keeps only the axes it cuts. False (nothing changed) when the two
// shapes differ.
bool merge_axes(StridedLayout& a, StridedLayout& b) {
  if (a.ndim != b.ndim) return false;
  for (int d = 0; d < a.ndim; ++d)
    if (a.shape[d] != b.shape[d]) return false;
  StridedLayout ma, mb;
  for (int d = 0; d < a.ndim; ++d) {
    if (a.shape[d] == 1) continue;
    const int m = ma.ndim;
    if (m > 0 && ma.strides[m - 1] == a.shape[d] * a.strides[d] && mb.strides[m - 1] == a.shape[d] * b.strides[d]) {
      ma.shape[m - 1] *= a.shape[d];
      mb.shape[m - 1] *= a.shape[d];
      ma.strides[m - 1] = a.strides[d];
      mb.strides[m - 1] = b.strides[d];
      continue;
    }
    ma.shape[m] = mb.shape[m] = a.shape[d];
    ma.strides[m] = a.strides[d];
    mb.strides[m] = b.strides[d];
    ma.ndim = mb.ndim = m + 1;
  }
  if (ma.ndim == 0) {  // a single element
    ma.ndim = mb.ndim = 1;
    ma.shape[0] = mb.shape[0] = 1;
    ma.strides[0] = mb.strides[0] = 1;
  }
  a = ma;
  b = mb;
  return true;
}

// The outer axes of a merged layout (all but the innermost): rows for copy_rows_kernel.
StridedLayout outer_axes(const StridedLayout& l) {
  StridedLayout o = l;
  o.ndim = l.ndim - 1;
  return o;
}

template <class S, class D>
void launch_copy_rows(void* dst, const StridedLayout& dst_layout, const void* src, const StridedLayout& src_layout,
                      int64_t n) {
  using DS = device_t<S>;
  using DD = device_t<D>;
  constexpr int V = kPack<DS> < kPack<DD> ? kPack<DS> : kPack<DD>;
  const int64_t inner = dst_layout.shape[dst_layout.ndim - 1];
  bool packed = inner % V == 0 && packs_aligned<V>(static_cast<const DS*>(src), static_cast<const DD*>(dst));
  for (int d = 0; d + 1 < dst_layout.ndim; ++d)
    packed = packed && dst_layout.strides[d] % V == 0 && src_layout.strides[d] % V == 0;
  auto kernel = n <= int64_t(UINT32_MAX) ? copy_rows_kernel<DS, DD, uint32_t> : copy_rows_kernel<DS, DD, int64_t>;
  kernel<<<grid_for_packs(n, V, 256), 256, 0, stream()>>>(static_cast<DD*>(dst), outer_axes(dst_layout),
                                                         static_cast<const DS*>(src), outer_axes(src_layout), inner, n,
                                                         packed);
  check_launch("copy_rows_kernel");
}

// The copy_rows_kernel instantiation for a pair of f32/bf16 dtypes.
template <class S>
void copy_rows_to(DType dst_dtype, void* dst, const StridedLayout& dst_layout, const void* src,
                  const StridedLayout& src_layout, int64_t n) {
  if (dst_dtype == DType::f32) launch_copy_rows<S, float>(dst, dst_layout, src, src_layout, n);
  else launch_copy_rows<S, bf16>(dst, dst_layout, src, src_layout, n);
}

bool is_f32_or_bf16(DType t) { return t == DType::f32 || t == DType::bf16; }

}  // namespace

void copy_strided(void* dst, DType dst_dtype, const StridedLayout& dst_layout, const void* src, DType src_dtype,
                  const StridedLayout& src_layout) {
  int64_t n = numel_of(dst_layout);
  HSA_CHECK(n == numel_of(src_layout), "cuda::copy_strided: {} destination elements but {} source elements", n,
            numel_of(src_layout));
  if (n == 0) return;
  StridedLayout dl = dst_layout, sl = src_layout;
  if (merge_axes(dl, sl) && is_f32_or_bf16(dst_dtype) && is_f32_or_bf16(src_dtype) && dl.strides[dl.ndim - 1] == 1 &&
      sl.strides[sl.ndim - 1] == 1) {
    if (src_dtype == DType::f32) copy_rows_to<float>(dst_dtype, dst, dl, src, sl, n);
    else copy_rows_to<bf16>(dst_dtype, dst, dl, src, sl, n);
    return;
  }
  copy_strided_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dst, dst_dtype, dl, src, src_dtype, sl, n);
  check_launch("copy_strided_kernel");
}

void fill_strided(void* dst, DType dtype, const StridedLayout& layout, double value) {
  int64_t n = numel_of(layout);
  if (n == 0) return;
  fill_strided_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dst, dtype, layout, value, n);
  check_launch("fill_strided_kernel");
}

}  // namespace hsa::cuda

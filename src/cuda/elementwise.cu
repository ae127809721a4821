#include "cuda/elementwise.h"

#include "cuda/kernel_util.cuh"

#include <hsa/error.h>

namespace hsa::cuda {

namespace {

template <class T> __global__ void add_kernel(const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = from_f32<T>(to_f32(a[i]) + to_f32(b[i]));
}

template <class T> __global__ void add_scaled_kernel(T* dst, const T* src, float alpha, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads())
    dst[i] = from_f32<T>(to_f32(dst[i]) + alpha * to_f32(src[i]));
}

struct StridedView {
  int ndim;
  int64_t shape[kMaxStridedDims];
  int64_t strides[kMaxStridedDims];
};

template <class T>
__global__ void add_scaled_strided_kernel(T* dst, StridedView view, const T* src, float alpha, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t rest = i, offset = 0;
    for (int d = view.ndim - 1; d >= 0; --d) {
      offset += (rest % view.shape[d]) * view.strides[d];
      rest /= view.shape[d];
    }
    dst[offset] = from_f32<T>(to_f32(dst[offset]) + alpha * to_f32(src[i]));
  }
}

template <class T> __global__ void scale_kernel(const T* x, float s, T* out, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = from_f32<T>(s * to_f32(x[i]));
}

}  // namespace

template <class T> void add(const T* a, const T* b, T* out, int64_t n) {
  if (n == 0) return;
  add_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dev(a), dev(b), dev(out), n);
  check_launch("add_kernel");
}

template <class T> void add_scaled(T* dst, const T* src, float alpha, int64_t n) {
  if (n == 0) return;
  add_scaled_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dev(dst), dev(src), alpha, n);
  check_launch("add_scaled_kernel");
}

template <class T>
void add_scaled_strided(T* dst, const int64_t* shape, const int64_t* strides, int ndim, const T* src, float alpha) {
  HSA_CHECK(ndim <= kMaxStridedDims, "cuda::add_scaled_strided: {} axes, at most {} supported", ndim,
            kMaxStridedDims);
  StridedView view{ndim, {}, {}};
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) {
    view.shape[d] = shape[d];
    view.strides[d] = strides[d];
    n *= shape[d];
  }
  if (n == 0) return;
  add_scaled_strided_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dev(dst), view, dev(src), alpha, n);
  check_launch("add_scaled_strided_kernel");
}

template <class T> void scale(const T* x, float s, T* out, int64_t n) {
  if (n == 0) return;
  scale_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dev(x), s, dev(out), n);
  check_launch("scale_kernel");
}

template void add<float>(const float*, const float*, float*, int64_t);
template void add<bf16>(const bf16*, const bf16*, bf16*, int64_t);
template void add_scaled<float>(float*, const float*, float, int64_t);
template void add_scaled<bf16>(bf16*, const bf16*, float, int64_t);
template void add_scaled_strided<float>(float*, const int64_t*, const int64_t*, int, const float*, float);
template void add_scaled_strided<bf16>(bf16*, const int64_t*, const int64_t*, int, const bf16*, float);
template void scale<float>(const float*, float, float*, int64_t);
template void scale<bf16>(const bf16*, float, bf16*, int64_t);

}  // namespace hsa::cuda

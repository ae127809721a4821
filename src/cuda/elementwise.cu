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

__global__ void add_scaled_f64_kernel(double* dst, const double* src, double alpha, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) dst[i] += alpha * src[i];
}

template <class T>
__global__ void add_scaled_strided_kernel(T* dst, StridedLayout view, const T* src, float alpha, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t offset = strided_offset(view, i);
    dst[offset] = from_f32<T>(to_f32(dst[offset]) + alpha * to_f32(src[i]));
  }
}

template <class T> __global__ void scale_kernel(const T* x, float s, T* out, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = from_f32<T>(s * to_f32(x[i]));
}

template <class T> __global__ void sum_of_squares_kernel(const T* x, int64_t n, double* acc) {
  __shared__ float scratch[32];
  float partial = 0.f;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    float v = to_f32(x[i]);
    partial += v * v;
  }
  float block = block_sum(partial, scratch);
  if (threadIdx.x == 0) atomicAdd(acc, double(block));
}

}  // namespace

template <class T> void accumulate_sum_of_squares(const T* x, int64_t n, double* acc) {
  if (n == 0) return;
  // Few blocks: each adds one value into acc, so the atomics stay negligible.
  unsigned blocks = std::min<unsigned>(grid_for(n, 256), 1024);
  sum_of_squares_kernel<<<blocks, 256, 0, stream()>>>(dev(x), n, acc);
  check_launch("sum_of_squares_kernel");
}

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

void add_scaled_f64(double* dst, const double* src, double alpha, int64_t n) {
  if (n == 0) return;
  add_scaled_f64_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dst, src, alpha, n);
  check_launch("add_scaled_f64_kernel");
}

template <class T>
void add_scaled_strided(T* dst, const int64_t* shape, const int64_t* strides, int ndim, const T* src, float alpha) {
  StridedLayout view = strided_layout("cuda::add_scaled_strided", shape, strides, ndim);
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
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
template void accumulate_sum_of_squares<float>(const float*, int64_t, double*);
template void accumulate_sum_of_squares<bf16>(const bf16*, int64_t, double*);
template void scale<float>(const float*, float, float*, int64_t);
template void scale<bf16>(const bf16*, float, bf16*, int64_t);

}  // namespace hsa::cuda

// Elementwise ops on the GPU over n values (a, b, src, x, out contiguous). T = float | hsa::bf16. Memory-bound:
// 16-byte accesses when the pointers allow (see for_each_pack in cuda/kernel_util.cuh).
#pragma once
#include "cuda/strided.h"

#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

template <class T> void add(const T* a, const T* b, T* out, int64_t n);
template <class T> void add_scaled(T* dst, const T* src, float alpha, int64_t n);  // dst += alpha * src
// The same in f64, for the few f64 tensors kept on the device (running sums such as the model's MoE aux loss).
void add_scaled_f64(double* dst, const double* src, double alpha, int64_t n);
// The same for a strided dst (a view: shape and strides in elements, up to kMaxStridedDims axes); src is
// contiguous in dst's row-major order.
template <class T>
void add_scaled_strided(T* dst, const int64_t* shape, const int64_t* strides, int ndim, const T* src, float alpha);
template <class T> void scale(const T* x, float s, T* out, int64_t n);
// *acc += sum over t < count of sum_i xs[t][i]^2, i < ns[t] (acc: one device double), in one launch for the whole
// list. Partial sums of 16K-element blocks in f32, then added in f64 in a fixed order: deterministic.
template <class T> void accumulate_sum_of_squares(const T* const* xs, const int64_t* ns, int64_t count, double* acc);

}  // namespace hsa::cuda

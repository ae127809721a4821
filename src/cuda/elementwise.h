// Elementwise ops on the GPU over n values (a, b, src, x, out contiguous). T = float | hsa::bf16.
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
// *acc += sum_i x_i^2 (acc: one device double; partial sums per block in f32, added into acc in f64).
template <class T> void accumulate_sum_of_squares(const T* x, int64_t n, double* acc);

}  // namespace hsa::cuda

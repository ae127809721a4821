// CPU elementwise kernels over n contiguous elements.
#pragma once
#include <cstdint>

namespace hsa::cpu {

template <class T> void add(const T* a, const T* b, T* out, int64_t n);           // out = a + b
template <class T> void add_scaled(T* dst, const T* src, T alpha, int64_t n);    // dst += alpha * src
template <class T> void scale(const T* x, T s, T* out, int64_t n);                // out = s * x
template <class T> double sum_of_squares(const T* x, int64_t n);                   // in f64

}  // namespace hsa::cpu

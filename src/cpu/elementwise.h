// CPU elementwise kernels over n contiguous elements.
#pragma once
#include <cstdint>

namespace hsa::cpu {

template <class T> void axpby(const T* x, T alpha, const T* y, T beta, T* out, int64_t n);  // out = alpha x + beta y
template <class T> void scale(const T* x, T s, T* out, int64_t n);

}  // namespace hsa::cpu

// A strided view's layout passed to kernels by value: shape and strides (in elements) of up to kMaxStridedDims
// axes. Plain C++, so ops and the tensor library can fill it; kernels walk it with strided_offset().
#pragma once
#include <hsa/error.h>

#include <cstdint>

namespace hsa::cuda {

constexpr int kMaxStridedDims = 8;

struct StridedLayout {
  int ndim = 0;
  int64_t shape[kMaxStridedDims] = {};
  int64_t strides[kMaxStridedDims] = {};
};

inline StridedLayout strided_layout(const char* what, const int64_t* shape, const int64_t* strides, int ndim) {
  HSA_CHECK(ndim <= kMaxStridedDims, "{}: {} axes, at most {} supported", what, ndim, kMaxStridedDims);
  StridedLayout l;
  l.ndim = ndim;
  for (int d = 0; d < ndim; ++d) l.shape[d] = shape[d], l.strides[d] = strides[d];
  return l;
}

}  // namespace hsa::cuda

// Element-wise copies and fills of strided device tensors, converting between dtypes (f32, bf16, i32, f64):
// what Tensor::copy_from, Tensor::to(DType) and Tensor::fill do for cuda tensors. Plain C++ header.
#pragma once
#include "cuda/strided.h"

#include <hsa/dtype.h>

namespace hsa::cuda {

// dst[i] = convert(src[i]) for every element i of the common shape (dst.shape == src.shape).
void copy_strided(void* dst, DType dst_dtype, const StridedLayout& dst_layout, const void* src, DType src_dtype,
                  const StridedLayout& src_layout);
void fill_strided(void* dst, DType dtype, const StridedLayout& layout, double value);

}  // namespace hsa::cuda

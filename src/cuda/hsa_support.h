// Host-visible helpers shared by the HSA CUDA kernels (hsa_attention.cu, retrieval.cu): f32 <-> bf16 conversion of
// device buffers, so the ops can hand every kernel f32 weights and return gradients in the caller's dtype.
// Without CUDA, src/cuda_stub/ defines these entry points to throw.
#pragma once
#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

// dst[i] = src[i] for i < n, converting between f32 and bf16 (or copying when the dtypes agree). Device pointers.
void hsa_convert(DType src_dtype, const void* src, DType dst_dtype, void* dst, int64_t n);

}  // namespace hsa::cuda

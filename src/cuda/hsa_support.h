// Host-visible helpers shared by the HSA CUDA kernels (hsa_attention.cu, retrieval.cu): f32 <-> bf16 conversion of
// device buffers, so the ops can hand every kernel f32 weights and return gradients in the caller's dtype; the
// handle of a chunk routing kept between calls, and a count of the routings built.
// Without CUDA, src/cuda_stub/ defines these entry points to throw.
#pragma once
#include <hsa/dtype.h>

#include <cstdint>
#include <memory>

namespace hsa::cuda {

namespace detail {
struct Routing;  // the chunk routing (cuda/hsa_support.cuh), opaque outside the kernels
}
// A chunk routing kept between calls (from the chunk attention forward to the backwards of the same indices): its
// device buffers come from the caching allocator and go back with the last copy of the pointer.
using SharedRouting = std::shared_ptr<const detail::Routing>;

// dst[i] = src[i] for i < n, converting between f32 and bf16 (or copying when the dtypes agree). Device pointers.
void hsa_convert(DType src_dtype, const void* src, DType dst_dtype, void* dst, int64_t n);

// How many chunk routings (the device sort that groups the selected entries by chunk: cuda/hsa_support.cuh) this
// process has built, by the chunk attention and the retrieval backward together. For tests: a training step builds
// one per HSA layer when the forward's routing reaches both backwards (ops/hsa_routing.h).
int64_t routing_builds();

}  // namespace hsa::cuda

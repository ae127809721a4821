// The chunk memory's page fetches as one kernel (docs/architecture.md "Chunk memory tiers"): many copies of the
// same size, each from device memory or from mapped pinned host memory (pinned_alloc, which a kernel reads directly
// over the bus), queued on the side stream of cuda/page_copy.h. One launch replaces one cudaMemcpyAsync per page:
// a long prefill fetches hundreds of thousands of 8 KiB pages, and the driver calls cost more than the bytes.
// Plain C++ header, declared in every build (src/cuda_stub/no_cuda.cpp throws without CUDA).
#pragma once
#include <cstddef>
#include <cstdint>

namespace hsa::cuda {

// Copies `bytes` bytes from src[i] to dst[i] for every i < count, on the side stream (after what side_begin()
// ordered it behind, before side_end()'s event). One thread block per copy, 16-byte accesses where both addresses
// and `bytes` allow. The copies run in any order and at once: no copy may write what another reads or writes.
// The arrays may be reused on return (they are copied into pinned memory the kernel reads).
void side_gather(const void* const* src, void* const* dst, int64_t count, size_t bytes);

}  // namespace hsa::cuda

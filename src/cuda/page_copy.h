// Copies of chunk-memory pages for the tiered memory (docs/architecture.md "Chunk memory tiers"): pinned host
// memory for the host tier, and a side stream on which the pages a segment selected travel to the GPU while the
// main stream computes. Plain C++ header, declared in every build (without CUDA, src/cuda_stub/no_cuda.cpp
// defines each entry point to throw).
//
// Ordering: side_begin() makes the side stream wait for everything queued on stream() so far (the destination
// buffers come from the stream-ordered caching allocator: a block handed out now may still be read by queued
// kernels). side_copy() queues on the side stream. side_end() records an event there; wait_side() makes stream()
// wait for that event, so the kernels that read the pages run after the copies and nothing waits on the host.
// side_gather (cuda/page_gather.h) queues its kernel on the same side stream.
#pragma once
#include <cstddef>

struct CUstream_st;  // cudaStream_t is CUstream_st*

namespace hsa::cuda {

// Page-locked host memory (cudaHostAlloc), mapped into the GPU's address space at the same address (unified
// addressing), so kernels can read it directly over the bus (cuda/page_gather.h); throws on failure.
void* pinned_alloc(size_t bytes);
void pinned_free(void* p);  // null is ignored

// The side stream itself (non-blocking, created once), for the kernels queued beside the copies.
CUstream_st* side_stream();

struct SideEvent {
  void* event = nullptr;  // cudaEvent_t, owned by the pool in page_copy.cu
};

void side_begin();
// Host<->device or device<->device on the side stream, asynchronous (from pageable host memory the driver
// stages the copy itself).
void side_copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes);
SideEvent side_end();
void wait_side(SideEvent e);  // stream() waits for e; the event goes back to the pool

}  // namespace hsa::cuda

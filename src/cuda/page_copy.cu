#include "cuda/page_copy.h"

#include "cuda/runtime.h"

#include <hsa/error.h>

#include <cuda_runtime.h>

#include <mutex>
#include <vector>

namespace hsa::cuda {

cudaStream_t side_stream() {
  // Non-blocking: it must not serialise with the legacy default stream, or the copies would not overlap.
  // Created once and never destroyed, like stream().
  static cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    HSA_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    return created;
  }();
  return s;
}

namespace {

// Events are reused: creating one per segment would cost a driver call each time.
struct EventPool {
  std::mutex mu;
  std::vector<cudaEvent_t> free;
  cudaEvent_t take() {
    std::lock_guard<std::mutex> lock(mu);
    if (!free.empty()) {
      cudaEvent_t e = free.back();
      free.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    HSA_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }
  void give(cudaEvent_t e) {
    std::lock_guard<std::mutex> lock(mu);
    free.push_back(e);
  }
};

EventPool& events() {
  static EventPool* p = new EventPool;  // leaked on purpose, like the allocator
  return *p;
}

}  // namespace

void* pinned_alloc(size_t bytes) {
  // Kernels are handed the host address (side_gather). With unified addressing (every 64-bit process on a GPU
  // CUDA 12 supports) pinned host memory is readable by kernels at that same address; checked once, not assumed.
  static const bool unified = [] {
    int device = 0, value = 0;
    HSA_CUDA_CHECK(cudaGetDevice(&device));
    HSA_CUDA_CHECK(cudaDeviceGetAttribute(&value, cudaDevAttrUnifiedAddressing, device));
    return value != 0;
  }();
  HSA_CHECK(unified, "cuda::pinned_alloc: the GPU has no unified addressing, so kernels cannot read host memory at "
                     "its host address");
  void* p = nullptr;
  HSA_CUDA_CHECK(cudaHostAlloc(&p, bytes, cudaHostAllocMapped));
  return p;
}

void pinned_free(void* p) {
  if (p) HSA_CUDA_CHECK(cudaFreeHost(p));
}

void side_begin() {
  cudaEvent_t e = events().take();
  HSA_CUDA_CHECK(cudaEventRecord(e, stream()));
  HSA_CUDA_CHECK(cudaStreamWaitEvent(side_stream(), e, 0));
  events().give(e);  // a recorded event may be re-recorded: the wait already captured this point
}

void side_copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) {
  if (bytes == 0) return;
  cudaMemcpyKind kind = dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                      : (src_on_device ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  HSA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, side_stream()));
}

SideEvent side_end() {
  cudaEvent_t e = events().take();
  HSA_CUDA_CHECK(cudaEventRecord(e, side_stream()));
  return SideEvent{e};
}

void wait_side(SideEvent e) {
  if (!e.event) return;
  auto ev = static_cast<cudaEvent_t>(e.event);
  HSA_CUDA_CHECK(cudaStreamWaitEvent(stream(), ev, 0));
  events().give(ev);
}

}  // namespace hsa::cuda

#include "cuda/page_gather.h"

#include "cuda/page_copy.h"
#include "cuda/runtime.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

namespace hsa::cuda {

namespace {

constexpr int kThreads = 128;
// Loads each thread issues before its stores: a read from host memory takes a bus round trip, so every thread
// keeps several in flight (128 threads x 4 x 16 B = one 8 KiB page per pass).
constexpr int kUnroll = 4;
// Copies per launch, so the pinned table stays small even when a whole memory is gathered (saving a state).
constexpr int64_t kMaxCopiesPerLaunch = int64_t(1) << 16;

// table: `count` source addresses, then `count` destination addresses; block i does copy i.
__global__ void page_gather_kernel(const void* const* table, int64_t count, size_t bytes) {
  const int64_t i = blockIdx.x;
  const char* src = static_cast<const char*>(table[i]);
  char* dst = static_cast<char*>(const_cast<void*>(table[count + i]));
  if (((reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst) | bytes) & 15) != 0) {
    for (size_t b = threadIdx.x; b < bytes; b += kThreads) dst[b] = src[b];  // an odd page size: byte by byte
    return;
  }
  const uint4* s = reinterpret_cast<const uint4*>(src);
  uint4* d = reinterpret_cast<uint4*>(dst);
  const int64_t n = static_cast<int64_t>(bytes / 16);
  for (int64_t base = 0; base < n; base += kThreads * kUnroll) {
    uint4 r[kUnroll];
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      const int64_t j = base + k * kThreads + threadIdx.x;
      if (j < n) r[k] = s[j];
    }
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      const int64_t j = base + k * kThreads + threadIdx.x;
      if (j < n) d[j] = r[k];
    }
  }
}

// The kernel reads its table from mapped pinned memory, so a table may be reused only once the kernel that read it
// has finished: each carries the event recorded after that kernel. Tables are taken when their event has
// completed, else a new one is made (a few exist at once: one per fetch in flight); kept for the process, like
// the event pool of page_copy.cu.
struct Table {
  const void** pointers = nullptr;
  int64_t capacity = 0;  // pointers
  cudaEvent_t done = nullptr;
};

class TablePool {
 public:
  Table take(int64_t pointers) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < idle_.size(); ++i) {
        if (idle_[i].capacity < pointers) continue;
        const cudaError_t status = cudaEventQuery(idle_[i].done);
        if (status == cudaErrorNotReady) {
          (void)cudaGetLastError();  // not an error: clear it, or the next check_launch would report it
          continue;
        }
        HSA_CUDA_CHECK(status);
        Table t = idle_[i];
        idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
        return t;
      }
    }
    Table t;
    t.capacity = std::max<int64_t>(pointers, 2 * 2048);  // a fetch of 2048 copies (1024 pages) fits the first
    t.pointers = static_cast<const void**>(pinned_alloc(static_cast<size_t>(t.capacity) * sizeof(void*)));
    HSA_CUDA_CHECK(cudaEventCreateWithFlags(&t.done, cudaEventDisableTiming));
    return t;
  }
  void give(Table t) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(t);
  }

 private:
  std::mutex mu_;
  std::vector<Table> idle_;
};

TablePool& tables() {
  static TablePool* p = new TablePool;  // leaked on purpose: pinned memory outlives every static destructor's use
  return *p;
}

}  // namespace

void side_gather(const void* const* src, void* const* dst, int64_t count, size_t bytes) {
  if (bytes == 0) return;
  for (int64_t first = 0; first < count; first += kMaxCopiesPerLaunch) {
    const int64_t n = std::min(kMaxCopiesPerLaunch, count - first);
    Table t = tables().take(2 * n);
    std::memcpy(t.pointers, src + first, static_cast<size_t>(n) * sizeof(void*));
    std::memcpy(t.pointers + n, dst + first, static_cast<size_t>(n) * sizeof(void*));
    page_gather_kernel<<<static_cast<unsigned>(n), kThreads, 0, side_stream()>>>(t.pointers, n, bytes);
    check_launch("page_gather_kernel");
    HSA_CUDA_CHECK(cudaEventRecord(t.done, side_stream()));
    tables().give(t);
  }
}

}  // namespace hsa::cuda

#include "cuda/runtime.h"

#include <hsa/error.h>

#include <cuda_runtime.h>

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace hsa::cuda {

void check_status(int status, const char* what, const char* file, int line) {
  if (status == cudaSuccess) return;
  fail("CUDA error in {} ({}:{}): {}", what, file, line, cudaGetErrorString(static_cast<cudaError_t>(status)));
}

void check_launch(const char* kernel) {
  cudaError_t status = cudaGetLastError();
  HSA_CHECK(status == cudaSuccess, "CUDA kernel launch failed: {}: {}", kernel, cudaGetErrorString(status));
}

bool built_with_cuda() { return true; }

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

CUstream_st* stream() {
  // Created once and never destroyed: tensors freed during static destruction still queue nothing on it.
  static cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    HSA_CUDA_CHECK(cudaStreamCreate(&created));
    return created;
  }();
  return s;
}

// ---- caching allocator -------------------------------------------------------------------------------------

size_t size_class(size_t bytes) {
  constexpr size_t kSmallStep = 512, kSmallLimit = size_t(1) << 20;
  if (bytes == 0) return kSmallStep;
  if (bytes <= kSmallLimit) return (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  // Four classes per power of two (p, 1.25p, 1.5p, 1.75p): at most 25% of a large block is slack.
  size_t p = size_t(1) << (63 - __builtin_clzll(bytes - 1));  // largest power of two below bytes
  size_t quarter = p / 4;
  return (bytes + quarter - 1) / quarter * quarter;
}

namespace {

class CachingAllocator {
 public:
  void* allocate(size_t bytes) {
    size_t cls = size_class(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.allocations;
    void* p = nullptr;
    auto it = free_.find(cls);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      stats_.bytes_cached -= cls;
      ++stats_.cache_hits;
    } else {
      cudaError_t status = cudaMalloc(&p, cls);
      if (status != cudaSuccess) {
        cudaGetLastError();
        release_cached_locked();
        status = cudaMalloc(&p, cls);
      }
      if (status != cudaSuccess) {
        cudaGetLastError();
        fail("CUDA out of memory: cudaMalloc of {} bytes (request {}) failed: {}; {} bytes in use, peak {}", cls,
             bytes, cudaGetErrorString(status), stats_.bytes_in_use, stats_.peak_bytes_in_use);
      }
      ++stats_.cuda_mallocs;
      stats_.bytes_reserved += cls;
    }
    live_[p] = cls;
    stats_.bytes_in_use += cls;
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
    return p;
  }

  void release(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(p);
    HSA_CHECK(it != live_.end(), "cuda::device_free: {} was not allocated by device_malloc (or freed twice)", p);
    size_t cls = it->second;
    live_.erase(it);
    stats_.bytes_in_use -= cls;
    stats_.bytes_cached += cls;
    free_[cls].push_back(p);
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached_locked();
  }

  void poison(int byte) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [cls, blocks] : free_)
      for (void* p : blocks) HSA_CUDA_CHECK(cudaMemsetAsync(p, byte, cls, stream()));
  }

  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }

 private:
  void release_cached_locked() {
    // Blocks in the cache may still be read by queued kernels of their previous owner: wait for the device.
    cudaDeviceSynchronize();
    for (auto& [cls, blocks] : free_) {
      for (void* p : blocks) {
        cudaFree(p);
        stats_.bytes_reserved -= cls;
        stats_.bytes_cached -= cls;
      }
      blocks.clear();
    }
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> free blocks
  std::unordered_map<void*, size_t> live_;               // block -> its size class
  MemoryStats stats_;
};

// Leaked on purpose: tensors destroyed during static destruction still return their blocks to it.
CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator;
  return *a;
}

}  // namespace

void* device_malloc(size_t bytes) { return allocator().allocate(bytes); }
void device_free(void* p) { allocator().release(p); }
MemoryStats memory_stats() { return allocator().stats(); }
void reset_peak_memory() { allocator().reset_peak(); }
void empty_cache() {
  allocator().empty_cache();  // synchronizes the device first
}

size_t free_device_memory() {
  size_t free_bytes = 0, total_bytes = 0;
  if (device_count() == 0 || cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return free_bytes;
}
void poison_cache(int byte) { allocator().poison(byte); }

// ---- copies and synchronisation ----------------------------------------------------------------------------

void copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) {
  if (bytes == 0) return;
  cudaMemcpyKind kind = dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                      : (src_on_device ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  // Host->device from pageable memory returns once the source has been staged, so the caller may free it.
  HSA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream()));
  if (src_on_device && !dst_on_device) synchronize();
}

void zero(void* p, size_t bytes) {
  if (bytes == 0) return;
  HSA_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream()));
}

// ---- input errors reported by kernels ------------------------------------------------------------------------

namespace {
struct InputErrors {
  std::mutex mutex;
  std::vector<std::string> messages;
  long long* record = nullptr;  // device
};
InputErrors& input_errors() {
  static InputErrors* e = new InputErrors;
  return *e;
}
}  // namespace

int input_error_code(const char* what) {
  InputErrors& e = input_errors();
  std::lock_guard<std::mutex> lock(e.mutex);
  for (size_t i = 0; i < e.messages.size(); ++i)
    if (e.messages[i] == what) return static_cast<int>(i) + 1;
  e.messages.emplace_back(what);
  return static_cast<int>(e.messages.size());
}

long long* input_error_record() {
  InputErrors& e = input_errors();
  std::lock_guard<std::mutex> lock(e.mutex);
  if (!e.record) {
    HSA_CUDA_CHECK(cudaMalloc(&e.record, 5 * sizeof(long long)));
    HSA_CUDA_CHECK(cudaMemsetAsync(e.record, 0, 5 * sizeof(long long), stream()));
  }
  return e.record;
}

namespace {
// Reads (and clears) the record; the stream must be drained.
void throw_recorded_input_error() {
  InputErrors& e = input_errors();
  long long host[5] = {0, 0, 0, 0, 0};
  {
    std::lock_guard<std::mutex> lock(e.mutex);
    if (!e.record) return;
    HSA_CUDA_CHECK(cudaMemcpy(host, e.record, sizeof(host), cudaMemcpyDeviceToHost));
    if (host[0] == 0) return;
    HSA_CUDA_CHECK(cudaMemset(e.record, 0, sizeof(host)));
  }
  std::string what = "a kernel";
  {
    std::lock_guard<std::mutex> lock(e.mutex);
    if (host[1] >= 1 && host[1] <= static_cast<long long>(e.messages.size())) what = e.messages[host[1] - 1];
  }
  fail("{}: {} at flat index {}, outside [0, {})", what, host[3], host[2], host[4]);
}
}  // namespace

void synchronize() {
  HSA_CUDA_CHECK(cudaStreamSynchronize(stream()));
  HSA_CUDA_CHECK(cudaGetLastError());
  throw_recorded_input_error();
}

void check_input_errors() { synchronize(); }

namespace {
class Event {
 public:
  Event() { HSA_CUDA_CHECK(cudaEventCreate(&e_)); }
  ~Event() { cudaEventDestroy(e_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};
}  // namespace

std::vector<float> time_calls_ms(const std::function<void()>& call, int repeats) {
  call();  // warm-up: first-call kernel attributes, scratch pool growth
  synchronize();
  Event start, stop;
  std::vector<float> ms;
  for (int r = 0; r < repeats; ++r) {
    HSA_CUDA_CHECK(cudaEventRecord(start.get(), nullptr));
    call();
    HSA_CUDA_CHECK(cudaEventRecord(stop.get(), nullptr));
    HSA_CUDA_CHECK(cudaEventSynchronize(stop.get()));
    float elapsed = 0;
    HSA_CUDA_CHECK(cudaEventElapsedTime(&elapsed, start.get(), stop.get()));
    ms.push_back(elapsed);
  }
  synchronize();  // throws if a kernel failed
  return ms;
}

const char* device_description() {
  static std::string description;
  if (description.empty()) {
    cudaDeviceProp prop{};
    HSA_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    description = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
                  std::to_string(prop.multiProcessorCount) + " SMs)";
  }
  return description.c_str();
}

}  // namespace hsa::cuda

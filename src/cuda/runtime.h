// The CUDA runtime behind hsa: device memory through a caching allocator, copies, the one stream
// every kernel runs on, event timing, and error checks. A plain C++ header, so the ops' .cpp files can include it;
// kernels (.cu) include cuda/kernel_util.cuh for the device-side helpers. Declared in every build: without CUDA,
// src/cuda_stub/ defines these (and every other cuda/*.h entry point) to throw (docs/architecture.md §5.4).
//
// Ordering model: every kernel, memset and copy goes on stream(), in issue order, and nothing waits for the
// device except device->host copies and synchronize(). A freed block goes back to the cache at once: the next
// user of that block is queued on the same stream, behind every kernel that still reads the old contents.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

struct CUstream_st;  // cudaStream_t is CUstream_st*

namespace hsa::cuda {

bool built_with_cuda();  // false only in a build without CUDA, where every other entry point but device_count throws
int device_count();      // 0 when there is no driver or no GPU (or no CUDA in the build); never throws
void* device_malloc(size_t bytes);  // through the caching allocator; never returns null (throws)
void device_free(void* p);          // returns the block to the cache (null is ignored)
// Host<->device or device<->device copy queued on stream(). Device->host waits for it (and everything queued
// before it), so the host can read dst on return; the other directions do not wait.
void copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes);
void zero(void* p, size_t bytes);  // cudaMemsetAsync on stream()
// Waits for stream() to drain, then throws if a kernel failed or reported invalid input (see input_error_*).
void synchronize();
const char* device_description();  // "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)"

// One warm-up call, then `repeats` calls of `call`, each timed between two CUDA events on the legacy default
// stream (which orders them after and before the work of every blocking stream); milliseconds per call. Throws if
// a kernel failed.
std::vector<float> time_calls_ms(const std::function<void()>& call, int repeats);

// The one stream every hsa kernel runs on. A blocking stream: work that others put on the legacy default
// stream stays ordered with it.
CUstream_st* stream();

// ---- caching allocator -------------------------------------------------------------------------------------
// Requests are rounded up to a size class (multiples of 512 B up to 1 MiB, then 4 classes per power of two);
// freed blocks wait in a per-class free list for the next request of that class. cudaMalloc runs only on a
// miss; when it fails, every cached block is released and it is tried once more.
struct MemoryStats {
  size_t bytes_in_use = 0;   // size-class bytes of live blocks
  size_t bytes_cached = 0;   // bytes of free blocks held in the cache
  size_t peak_bytes_in_use = 0;
  size_t bytes_reserved = 0; // in_use + cached: what cudaMalloc has handed out
  uint64_t allocations = 0;  // device_malloc calls
  uint64_t cache_hits = 0;   // of those, served from the cache
  uint64_t cuda_mallocs = 0; // of those, served by cudaMalloc
};
MemoryStats memory_stats();
void reset_peak_memory();  // peak := current bytes in use
// Waits for the device, then cudaFree()s every cached block.
void empty_cache();
// Device memory the driver could still hand out (cudaMemGetInfo); 0 without a device. Memory hsa keeps cached
// does not count as free: call empty_cache() first to measure what a new workload could get.
size_t free_device_memory();
size_t size_class(size_t bytes);  // the block size a request of `bytes` gets (exposed for tests)
// Testing aid: fills every cached free block with `byte` (0xFF makes f32 and bf16 values NaN), so an output
// allocated from the cache that a kernel leaves partly unwritten shows up in a parity test.
void poison_cache(int byte);

// ---- errors ---------------------------------------------------------------------------------------------------
// Throws hsa::Error "CUDA error in <what> (<file>:<line>): <message>" unless status is cudaSuccess (0).
void check_status(int status, const char* what, const char* file, int line);
// After every kernel launch: throws if the launch itself failed (bad configuration, no device). Does not wait
// for the kernel.
void check_launch(const char* kernel);

// Kernels cannot throw, so kernels that validate their input (ids, targets) record the first bad value in a
// device-side record and write something harmless instead. The record is read at the next synchronize() (or
// by check_input_errors(), which synchronizes), which throws "<what>: <value> at flat index <index>, outside
// [0, <bound>)". `code` comes from input_error_code(what), registered once per message.
int input_error_code(const char* what);
long long* input_error_record();  // device pointer, 5 long longs: {set, code, index, value, bound}
void check_input_errors();

}  // namespace hsa::cuda

#define HSA_CUDA_CHECK(expr) ::hsa::cuda::check_status(static_cast<int>(expr), #expr, __FILE__, __LINE__)

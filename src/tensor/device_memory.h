// Raw memory on either device. The CUDA half calls cuda/runtime.h, whose entry points throw a clear error in a
// build without CUDA (docs/architecture.md §5.4).
#pragma once
#include <hsa/dtype.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hsa {

void* device_alloc(Device device, size_t bytes);
void (*device_deleter(Device device))(void*);
// Copies bytes between any two devices (host<->device, device<->device, host<->host).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
// "cpu", or the GPU's name and size; throws a clear error when the device cannot be used (no GPU, or a build
// without CUDA), so commands taking --device fail before they start.
std::string describe_device(Device device);
// Bytes that allocations on `device` can still get (host: available physical memory).
size_t free_memory_bytes(Device device);
// Waits until every queued kernel and copy on `device` has finished (a no-op on the cpu), for timing.
void synchronize_device(Device device);
void zero_bytes(void* p, Device device, size_t bytes);
// Element-wise strided copy / fill on one non-cpu device, converting dtypes (the cpu does its own in tensor.cpp).
void copy_elements(void* dst, DType dst_dtype, const std::vector<int64_t>& shape, const std::vector<int64_t>& dst_strides,
                   const void* src, DType src_dtype, const std::vector<int64_t>& src_strides, Device device);
// Host memory for data that is copied to `device` often (the chunk memory's host tier): page-locked on cuda, so
// the copies run asynchronously, and mapped, so a side_gather reads it in place at the same address; plain memory
// on the cpu.
void* host_staging_alloc(Device device, size_t bytes);
void host_staging_free(Device device, void* p);

// Copies queued beside the compute stream, so they overlap with kernels (the page fetches of the chunk memory tiers,
// docs/architecture.md §8.1); on the cpu each copy is done at once. side_copies_begin orders the side copies after
// everything queued so far; side_copies_end returns an event that wait_side_copies makes the compute stream wait
// for, before the first kernel that reads what was copied. "On device" means in `device`'s memory.
struct SideCopies {
  Device device = Device::cpu;
  void* event = nullptr;  // cuda: the event recorded after the copies
};
void side_copies_begin(Device device);
void side_copy(Device device, void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes);
SideCopies side_copies_end(Device device);
void wait_side_copies(SideCopies& copies);  // a no-op on the cpu and for an event already waited for

// Many side copies of `bytes` bytes each, from src[i] to dst[i], queued as one: on cuda one kernel on the side
// stream (between side_copies_begin and _end), whose sources may be in `device`'s memory or in host_staging_alloc
// memory (not in other host memory); on the cpu memcpy, in order. The copies may run at once and in any order, so
// no copy may write what another reads or writes; queue a copy whose source another writes in a later gather.
struct PageGather {
  size_t bytes = 0;
  std::vector<const void*> src;
  std::vector<void*> dst;
  void add(void* to, const void* from) {
    dst.push_back(to);
    src.push_back(from);
  }
  int64_t size() const { return static_cast<int64_t>(src.size()); }
};
void side_gather(Device device, const PageGather& gather);

void fill_elements(void* dst, DType dtype, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                   double value, Device device);

}  // namespace hsa

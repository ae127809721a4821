// Raw memory on either device; the CUDA half exists only in CUDA builds and fails clearly otherwise.
#pragma once
#include <hsa/dtype.h>

#include <cstddef>

namespace hsa {

void* device_alloc(Device device, size_t bytes);
void (*device_deleter(Device device))(void*);
// Copies bytes between any two devices (host<->device, device<->device, host<->host).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);

}  // namespace hsa

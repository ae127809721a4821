// The CUDA runtime behind hsa: device memory through a caching allocator, copies, the one stream
// every kernel runs on, and error checks. Only compiled in CUDA builds.
#pragma once
#include <cstddef>

namespace hsa::cuda {

int device_count();  // 0 when there is no driver or no GPU; never throws
void* device_malloc(size_t bytes);
void device_free(void* p);
void copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes);
void synchronize();
const char* device_description();  // "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)"

}  // namespace hsa::cuda

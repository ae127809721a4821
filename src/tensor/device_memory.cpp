#include "tensor/device_memory.h"

#include <hsa/error.h>

#include <cstdlib>
#include <cstring>

#ifdef HSA_WITH_CUDA
#include "cuda/runtime.h"
#endif

namespace hsa {

namespace {
void host_free(void* p) { std::free(p); }
}  // namespace

void* device_alloc(Device device, size_t bytes) {
  if (device == Device::cpu) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    HSA_CHECK(p != nullptr, "out of host memory allocating {} bytes", bytes);
    return p;
  }
#ifdef HSA_WITH_CUDA
  return cuda::device_malloc(bytes);
#else
  fail("cannot allocate {} bytes on cuda: hsa was built without CUDA", bytes);
#endif
}

void (*device_deleter(Device device))(void*) {
  if (device == Device::cpu) return host_free;
#ifdef HSA_WITH_CUDA
  return cuda::device_free;
#else
  return host_free;
#endif
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device == Device::cpu && src_device == Device::cpu) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef HSA_WITH_CUDA
  cuda::copy(dst, dst_device == Device::cuda, src, src_device == Device::cuda, bytes);
#else
  fail("cannot copy to or from cuda: hsa was built without CUDA");
#endif
}

}  // namespace hsa

#include "tensor/device_memory.h"

#include <hsa/error.h>

#include <cstdlib>
#include <cstring>

#include <unistd.h>

#ifdef HSA_WITH_CUDA
#include "cuda/copy.h"
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

std::string describe_device(Device device) {
  if (device == Device::cpu) return "cpu";
#ifdef HSA_WITH_CUDA
  HSA_CHECK(cuda::device_count() > 0, "--device cuda: no CUDA device found (driver or GPU missing); use --device cpu");
  return cuda::device_description();
#else
  fail("--device cuda: this hsa was built without CUDA (configure with nvcc on PATH, or -DHSA_CUDA=ON)");
#endif
}

size_t free_memory_bytes(Device device) {
  if (device == Device::cpu) return size_t(sysconf(_SC_AVPHYS_PAGES)) * size_t(sysconf(_SC_PAGESIZE));
#ifdef HSA_WITH_CUDA
  return cuda::free_device_memory();
#else
  return 0;
#endif
}

void synchronize_device(Device device) {
  if (device == Device::cpu) return;
#ifdef HSA_WITH_CUDA
  cuda::synchronize();
#endif
}

void zero_bytes(void* p, Device device, size_t bytes) {
  if (bytes == 0) return;
  if (device == Device::cpu) {
    std::memset(p, 0, bytes);
    return;
  }
#ifdef HSA_WITH_CUDA
  cuda::zero(p, bytes);
#else
  fail("cannot zero cuda memory: hsa was built without CUDA");
#endif
}

#ifdef HSA_WITH_CUDA
namespace {
cuda::StridedLayout layout_of(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  return cuda::strided_layout("Tensor (cuda)", shape.data(), strides.data(), static_cast<int>(shape.size()));
}
}  // namespace
#endif

void copy_elements(void* dst, DType dst_dtype, const std::vector<int64_t>& shape, const std::vector<int64_t>& dst_strides,
                   const void* src, DType src_dtype, const std::vector<int64_t>& src_strides, Device device) {
  HSA_CHECK(device == Device::cuda, "copy_elements: {} is not a device with element kernels", device_name(device));
#ifdef HSA_WITH_CUDA
  cuda::copy_strided(dst, dst_dtype, layout_of(shape, dst_strides), src, src_dtype, layout_of(shape, src_strides));
#else
  (void)dst, (void)dst_dtype, (void)shape, (void)dst_strides, (void)src, (void)src_dtype, (void)src_strides;
  fail("cannot copy cuda tensors: hsa was built without CUDA");
#endif
}

void fill_elements(void* dst, DType dtype, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                   double value, Device device) {
  HSA_CHECK(device == Device::cuda, "fill_elements: {} is not a device with element kernels", device_name(device));
#ifdef HSA_WITH_CUDA
  cuda::fill_strided(dst, dtype, layout_of(shape, strides), value);
#else
  (void)dst, (void)dtype, (void)shape, (void)strides, (void)value;
  fail("cannot fill cuda tensors: hsa was built without CUDA");
#endif
}

}  // namespace hsa

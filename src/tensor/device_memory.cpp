#include "tensor/device_memory.h"

#include "cuda/copy.h"
#include "cuda/page_copy.h"
#include "cuda/page_gather.h"
#include "cuda/runtime.h"

#include <hsa/error.h>

#include <cstdlib>
#include <cstring>

#include <unistd.h>

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
  return cuda::device_malloc(bytes);
}

void (*device_deleter(Device device))(void*) {
  if (device == Device::cpu) return host_free;
  return cuda::device_free;
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device == Device::cpu && src_device == Device::cpu) {
    std::memcpy(dst, src, bytes);
    return;
  }
  cuda::copy(dst, dst_device == Device::cuda, src, src_device == Device::cuda, bytes);
}

std::string describe_device(Device device) {
  if (device == Device::cpu) return "cpu";
  HSA_CHECK(cuda::built_with_cuda(),
            "--device cuda: this hsa was built without CUDA (configure with nvcc on PATH, or -DHSA_CUDA=ON)");
  HSA_CHECK(cuda::device_count() > 0, "--device cuda: no CUDA device found (driver or GPU missing); use --device cpu");
  return cuda::device_description();
}

size_t free_memory_bytes(Device device) {
  if (device == Device::cpu) return size_t(sysconf(_SC_AVPHYS_PAGES)) * size_t(sysconf(_SC_PAGESIZE));
  return cuda::free_device_memory();
}

void synchronize_device(Device device) {
  if (device == Device::cpu) return;
  cuda::synchronize();
}

void zero_bytes(void* p, Device device, size_t bytes) {
  if (bytes == 0) return;
  if (device == Device::cpu) {
    std::memset(p, 0, bytes);
    return;
  }
  cuda::zero(p, bytes);
}

namespace {
cuda::StridedLayout layout_of(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  return cuda::strided_layout("Tensor (cuda)", shape.data(), strides.data(), static_cast<int>(shape.size()));
}
}  // namespace

void copy_elements(void* dst, DType dst_dtype, const std::vector<int64_t>& shape, const std::vector<int64_t>& dst_strides,
                   const void* src, DType src_dtype, const std::vector<int64_t>& src_strides, Device device) {
  HSA_CHECK(device == Device::cuda, "copy_elements: {} is not a device with element kernels", device_name(device));
  cuda::copy_strided(dst, dst_dtype, layout_of(shape, dst_strides), src, src_dtype, layout_of(shape, src_strides));
}

void fill_elements(void* dst, DType dtype, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                   double value, Device device) {
  HSA_CHECK(device == Device::cuda, "fill_elements: {} is not a device with element kernels", device_name(device));
  cuda::fill_strided(dst, dtype, layout_of(shape, strides), value);
}

void* host_staging_alloc(Device device, size_t bytes) {
  if (device == Device::cuda) return cuda::pinned_alloc(bytes);
  void* p = std::malloc(bytes == 0 ? 1 : bytes);
  HSA_CHECK(p != nullptr, "out of host memory allocating {} bytes", bytes);
  return p;
}

void host_staging_free(Device device, void* p) {
  if (device == Device::cuda) return cuda::pinned_free(p);
  std::free(p);
}

void side_copies_begin(Device device) {
  if (device == Device::cuda) cuda::side_begin();
}

void side_copy(Device device, void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) {
  if (device == Device::cuda) return cuda::side_copy(dst, dst_on_device, src, src_on_device, bytes);
  if (bytes > 0) std::memcpy(dst, src, bytes);
}

SideCopies side_copies_end(Device device) {
  SideCopies c;
  c.device = device;
  if (device == Device::cuda) c.event = cuda::side_end().event;
  return c;
}

void wait_side_copies(SideCopies& copies) {
  if (copies.device == Device::cuda && copies.event) cuda::wait_side(cuda::SideEvent{copies.event});
  copies.event = nullptr;
}

void side_gather(Device device, const PageGather& gather) {
  if (gather.size() == 0 || gather.bytes == 0) return;
  if (device == Device::cuda)
    return cuda::side_gather(gather.src.data(), gather.dst.data(), gather.size(), gather.bytes);
  for (int64_t i = 0; i < gather.size(); ++i) std::memcpy(gather.dst[i], gather.src[i], gather.bytes);
}

}  // namespace hsa

#include "cuda/runtime.h"

#include <hsa/error.h>

#include <cuda_runtime.h>

#include <string>

namespace hsa::cuda {

namespace {
void check(cudaError_t status, const char* what) {
  HSA_CHECK(status == cudaSuccess, "CUDA error in {}: {}", what, cudaGetErrorString(status));
}
}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

void* device_malloc(size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes == 0 ? 256 : bytes), "cudaMalloc");
  return p;
}

void device_free(void* p) { cudaFree(p); }

void copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) {
  cudaMemcpyKind kind = dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                      : (src_on_device ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  check(cudaMemcpy(dst, src, bytes, kind), "cudaMemcpy");
}

void synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

const char* device_description() {
  static std::string description;
  if (description.empty()) {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    description = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
                  std::to_string(prop.multiProcessorCount) + " SMs)";
  }
  return description.c_str();
}

}  // namespace hsa::cuda

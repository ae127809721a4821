// Shared by the GPU parity tests: skip without a GPU, move tensors, poison the allocator's cache so outputs
// start as NaN, and compare a GPU result with the CPU op by relative error in norm.
#pragma once
#include "common/gradcheck.h"
#include "cuda/runtime.h"

#include <hsa/random.h>
#include <hsa/tensor.h>

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace hsa::testing {

#define HSA_REQUIRE_GPU()                                                       \
  do {                                                                          \
    if (::hsa::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";     \
  } while (0)

// Tolerances of the parity rules: relative error in norm against the CPU op.
constexpr double kF32Tol = 1e-5, kBf16Tol = 1e-2;
inline double tol_for(DType dtype) { return dtype == DType::bf16 ? kBf16Tol : kF32Tol; }

inline Tensor gpu(const Tensor& t) { return t.to(Device::cuda); }
inline Tensor host(const Tensor& t) { return t.to(Device::cpu); }

// Fresh random input in `dtype` (rounded once on the CPU, so both devices see the same values).
inline Tensor random_input(const Shape& shape, uint64_t seed, DType dtype, double stddev = 1.0) {
  return randn(shape, seed, stddev, dtype);
}

// Puts blocks of each output's size class into the allocator's cache and fills the whole cache with NaN bytes:
// the op's outputs are then carved from poisoned memory, so an element a kernel forgets to write fails the test.
inline void poison_outputs(std::initializer_list<size_t> output_bytes) {
  std::vector<void*> blocks;
  for (size_t bytes : output_bytes) blocks.push_back(cuda::device_malloc(bytes));
  for (void* p : blocks) cuda::device_free(p);
  cuda::poison_cache(0xFF);
}

// The GPU tensor must be on cuda with the CPU result's shape and dtype and within tol of it (NaN fails).
inline void expect_parity(const Tensor& gpu_result, const Tensor& cpu_result, double tol, const std::string& what) {
  ASSERT_EQ(gpu_result.device(), Device::cuda) << what;
  Tensor got = host(gpu_result);
  ASSERT_EQ(got.shape(), cpu_result.shape()) << what;
  EXPECT_EQ(got.dtype(), cpu_result.dtype()) << what;
  double err = relative_error(got, cpu_result);
  EXPECT_LT(err, tol) << what << ": relative error " << err;
}

// t on the GPU, contiguous, but starting one element past an aligned address: the kernels' 16-byte packs do not
// fit it, so they must take their width-1 path.
inline Tensor gpu_misaligned(const Tensor& t) {
  Tensor buffer = Tensor::zeros({t.numel() + 1}, t.dtype(), Device::cuda);
  Tensor view = buffer.slice(0, 1, t.numel() + 1).view(t.shape());
  view.copy_from(t);
  return view;
}

inline size_t bytes_of(const Shape& shape, DType dtype) { return size_t(shape_numel(shape)) * dtype_size(dtype); }

}  // namespace hsa::testing

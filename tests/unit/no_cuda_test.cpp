// The seam for builds without CUDA (src/cuda_stub/no_cuda.cpp): every cuda/*.h entry point exists and fails with
// one clear message, so the ops need no #ifdef. In a CUDA build these tests have nothing to check and skip.
#include "cuda/block_attention.h"
#include "cuda/page_copy.h"
#include "cuda/retrieval.h"
#include "cuda/runtime.h"
#include "tensor/device_memory.h"

#include "common/error_text.h"

#include <hsa/tensor.h>

#include <gtest/gtest.h>

using namespace hsa;
using hsa::testing::error_of;
using hsa::testing::has;

#define SKIP_IN_CUDA_BUILDS() \
  if (cuda::built_with_cuda()) GTEST_SKIP() << "built with CUDA: the stubs are not linked"

TEST(NoCuda, RuntimeReportsNoDeviceWithoutThrowing) {
  SKIP_IN_CUDA_BUILDS();
  EXPECT_EQ(cuda::device_count(), 0);
  cuda::device_free(nullptr);  // freeing nothing is allowed everywhere
}

TEST(NoCuda, EveryEntryPointNamesItselfAndTheMissingBackend) {
  SKIP_IN_CUDA_BUILDS();
  const std::string malloc_error = error_of([] { cuda::device_malloc(16); });
  EXPECT_TRUE(has(malloc_error, "cuda::device_malloc")) << malloc_error;
  EXPECT_TRUE(has(malloc_error, "built without CUDA")) << malloc_error;
  EXPECT_TRUE(has(error_of([] { cuda::synchronize(); }), "cuda::synchronize"));
  EXPECT_TRUE(has(error_of([] { cuda::block_attention_supported(BlockAttentionDims{1, 8, 2, 16}); }),
                  "cuda::block_attention_supported"));
  EXPECT_TRUE(has(error_of([] { cuda::retrieval_kernel_name(cuda::RetrievalKernel::scalar); }),
                  "cuda::retrieval_kernel_name"));
  const RetrievalDims d{1, 4, 2, 1, 8, 2, 1, 0, 0, false};
  EXPECT_TRUE(has(error_of([&] { cuda::retrieval_forward(DType::f32, nullptr, nullptr, nullptr, nullptr, nullptr, d,
                                                         1.0, cuda::RetrievalKernel::split); }),
                  "cuda::retrieval_forward"));
  // The tiered chunk memory's copies (pinned host pages, side stream).
  EXPECT_TRUE(has(error_of([] { cuda::pinned_alloc(64); }), "cuda::pinned_alloc"));
  cuda::pinned_free(nullptr);
  EXPECT_TRUE(has(error_of([] { cuda::side_begin(); }), "cuda::side_begin"));
  EXPECT_TRUE(has(error_of([] { host_staging_alloc(Device::cuda, 64); }), "cuda::pinned_alloc"));
  PageGather gather;  // one copy, so the cuda branch is taken
  gather.bytes = 8;
  char a[8] = {}, b[8] = {};
  gather.add(a, b);
  EXPECT_TRUE(has(error_of([&] { side_gather(Device::cuda, gather); }), "cuda::side_gather"));
}

TEST(NoCuda, AskingForTheGpuFailsBeforeAnyKernel) {
  SKIP_IN_CUDA_BUILDS();
  const std::string described = error_of([] { describe_device(Device::cuda); });
  EXPECT_TRUE(has(described, "--device cuda")) << described;
  EXPECT_TRUE(has(described, "built without CUDA")) << described;
  // A cuda tensor cannot exist, so an op's cuda branch is never reached with data.
  EXPECT_TRUE(has(error_of([] { Tensor::zeros({2, 3}, DType::f32, Device::cuda); }), "built without CUDA"));
  Tensor q = Tensor::zeros({1, 2, 1, 4}, DType::f32);
  EXPECT_TRUE(has(error_of([&] { q.to(Device::cuda); }), "built without CUDA"));
}

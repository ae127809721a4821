// The CUDA runtime: caching allocator reuse and statistics, copies, error reporting.
#include "cuda/runtime.h"
#include "gpu/parity.h"
#include "ops/embedding.h"

#include <gtest/gtest.h>

#include <cuda_runtime.h>

using namespace hsa;
using namespace hsa::testing;

TEST(CudaRuntime, SizeClassesBoundSlack) {
  // No device needed: pure arithmetic.
  EXPECT_EQ(cuda::size_class(0), 512u);
  EXPECT_EQ(cuda::size_class(1), 512u);
  EXPECT_EQ(cuda::size_class(513), 1024u);
  EXPECT_EQ(cuda::size_class(size_t(1) << 20), size_t(1) << 20);
  for (size_t bytes : {size_t(1) << 20 | 1, size_t(3'000'001), size_t(123'456'789), size_t(1) << 30}) {
    size_t cls = cuda::size_class(bytes);
    EXPECT_GE(cls, bytes);
    EXPECT_LE(double(cls), 1.25 * double(bytes) + 512) << bytes;
    EXPECT_EQ(cuda::size_class(cls), cls) << "a class maps to itself";
  }
}

TEST(CudaRuntime, CachingAllocatorReusesFreedBlocksAndCounts) {
  HSA_REQUIRE_GPU();
  cuda::empty_cache();
  cuda::MemoryStats s0 = cuda::memory_stats();
  const size_t bytes = 3'000'001, cls = cuda::size_class(bytes);

  void* a = cuda::device_malloc(bytes);
  cuda::MemoryStats s1 = cuda::memory_stats();
  EXPECT_EQ(s1.bytes_in_use, s0.bytes_in_use + cls);
  EXPECT_EQ(s1.cuda_mallocs, s0.cuda_mallocs + 1);
  EXPECT_GE(s1.peak_bytes_in_use, s1.bytes_in_use);

  cuda::device_free(a);
  cuda::MemoryStats s2 = cuda::memory_stats();
  EXPECT_EQ(s2.bytes_in_use, s0.bytes_in_use);
  EXPECT_EQ(s2.bytes_cached, s0.bytes_cached + cls);
  EXPECT_EQ(s2.bytes_reserved, s2.bytes_in_use + s2.bytes_cached);

  // A request of the same class (not the same size) gets the same block back, without cudaMalloc.
  void* b = cuda::device_malloc(bytes + 100);
  cuda::MemoryStats s3 = cuda::memory_stats();
  EXPECT_EQ(b, a);
  EXPECT_EQ(s3.cuda_mallocs, s2.cuda_mallocs);
  EXPECT_EQ(s3.cache_hits, s2.cache_hits + 1);
  EXPECT_EQ(s3.bytes_cached, s0.bytes_cached);

  // A second live block of that class needs a new one; peak sees both.
  void* c = cuda::device_malloc(bytes);
  EXPECT_NE(c, b);
  EXPECT_GE(cuda::memory_stats().peak_bytes_in_use, s0.bytes_in_use + 2 * cls);
  cuda::device_free(b);
  cuda::device_free(c);
  cuda::reset_peak_memory();
  EXPECT_EQ(cuda::memory_stats().peak_bytes_in_use, cuda::memory_stats().bytes_in_use);

  cuda::empty_cache();
  cuda::MemoryStats s4 = cuda::memory_stats();
  EXPECT_EQ(s4.bytes_cached, 0u);
  EXPECT_EQ(s4.bytes_reserved, s4.bytes_in_use);
}

TEST(CudaRuntime, EmptyCacheGivesCachedMemoryBackToTheDriver) {
  HSA_REQUIRE_GPU();
  constexpr size_t kBytes = size_t(1) << 30;
  cuda::empty_cache();
  const size_t free0 = cuda::free_device_memory();
  ASSERT_GT(free0, 2 * kBytes) << "needs 2 GiB of free device memory";
  // A freed block stays cached (reserved from the driver) until empty_cache(). Every device buffer, the kernels'
  // scratch included, comes from this one allocator: nothing allocates from the stream-ordered pool.
  cuda::device_free(cuda::device_malloc(kBytes));
  cuda::synchronize();
  const size_t held = cuda::free_device_memory();
  constexpr size_t kSlack = size_t(64) << 20;  // the driver's own bookkeeping
  EXPECT_LE(held + kBytes, free0 + kSlack) << "the cached block is not free to the driver";
  cuda::empty_cache();
  const size_t after = cuda::free_device_memory();
  EXPECT_GE(after + kSlack, free0) << "free " << free0 << " -> " << held << " -> " << after;
}

TEST(CudaRuntime, TensorsGoThroughTheAllocator) {
  HSA_REQUIRE_GPU();
  size_t before = cuda::memory_stats().bytes_in_use;
  {
    Tensor t = Tensor::empty({1000, 3}, DType::f32, Device::cuda);
    EXPECT_EQ(cuda::memory_stats().bytes_in_use, before + cuda::size_class(12000));
  }
  EXPECT_EQ(cuda::memory_stats().bytes_in_use, before);
}

TEST(CudaRuntime, CopiesRoundTrip) {
  HSA_REQUIRE_GPU();
  Tensor x = randn({7, 33}, 5);
  Tensor d = x.to(Device::cuda);
  EXPECT_EQ(d.device(), Device::cuda);
  Tensor d2 = d.clone();  // device -> device
  Tensor back = d2.to(Device::cpu);
  EXPECT_EQ(max_abs_diff(back, x), 0.0);
  Tensor z = Tensor::zeros({5, 9}, DType::bf16, Device::cuda).to(Device::cpu);
  for (double v : z.to_vector()) EXPECT_EQ(v, 0.0);
}

TEST(CudaRuntime, ErrorsNameTheCall) {
  HSA_REQUIRE_GPU();
  try {
    HSA_CUDA_CHECK(cudaMemcpy(nullptr, reinterpret_cast<void*>(16), 64, cudaMemcpyDeviceToDevice));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA error in cudaMemcpy"), std::string::npos) << e.what();
  }
  cudaGetLastError();
  EXPECT_NO_THROW(cuda::check_launch("nothing"));
  EXPECT_NE(std::string(cuda::device_description()).find("sm_"), std::string::npos);
}

TEST(CudaRuntime, KernelInputErrorsThrowAtTheNextSync) {
  HSA_REQUIRE_GPU();
  Tensor table = gpu(randn({5, 4}, 1));
  Tensor ids = gpu(Tensor::from_i32({0, 4, 7, 1}, {2, 2}));
  Tensor y = ops::embedding_forward(table, ids);  // queued; no wait
  try {
    cuda::synchronize();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("embedding_forward"), std::string::npos) << msg;
    EXPECT_NE(msg.find("7 at flat index 2, outside [0, 5)"), std::string::npos) << msg;
  }
  EXPECT_NO_THROW(cuda::synchronize()) << "the record is cleared once reported";
  // The bad row is zeros, the others are gathered.
  Tensor h = host(y);
  for (int64_t k = 0; k < 4; ++k) {
    EXPECT_EQ(h.item({1, 0, k}), 0.0);
    EXPECT_EQ(h.item({0, 1, k}), host(table).item({4, k}));
  }
}

// Every entry point of src/cuda/*.h for a build without CUDA (CMake compiles this file instead of src/cuda/*.cu).
// Each one throws, so the ops dispatch with a plain `if (device == Device::cuda)` in every build and a CPU-only
// hsa fails with one clear message the moment anything asks for the GPU (docs/architecture.md §5.4). Nothing can
// reach them with real device memory: device_malloc is the first to throw.
#include "cuda/adamw.h"
#include "cuda/block_attention.h"
#include "cuda/chunk_pool.h"
#include "cuda/copy.h"
#include "cuda/cross_entropy.h"
#include "cuda/elementwise.h"
#include "cuda/embedding.h"
#include "cuda/gemm.h"
#include "cuda/grouped_gemm.h"
#include "cuda/hsa_attention.h"
#include "cuda/hsa_decode.h"
#include "cuda/hsa_support.h"
#include "cuda/linear.h"
#include "cuda/moe.h"
#include "cuda/page_copy.h"
#include "cuda/page_gather.h"
#include "cuda/retrieval.h"
#include "cuda/rmsnorm.h"
#include "cuda/rope.h"
#include "cuda/runtime.h"
#include "cuda/swa_attention.h"
#include "cuda/swiglu.h"

#include <hsa/error.h>

namespace hsa::cuda {

namespace {
[[noreturn]] void no_cuda(const char* entry) {
  fail("cuda::{}: this hsa was built without CUDA (configure with nvcc on PATH, or -DHSA_CUDA=ON)", entry);
}
}  // namespace

// ---- runtime.h ------------------------------------------------------------------------------------------------
bool built_with_cuda() { return false; }
int device_count() { return 0; }
void* device_malloc(size_t) { no_cuda("device_malloc"); }
void device_free(void* p) {
  if (p) no_cuda("device_free");
}
void copy(void*, bool, const void*, bool, size_t) { no_cuda("copy"); }
void zero(void*, size_t) { no_cuda("zero"); }
void synchronize() { no_cuda("synchronize"); }
const char* device_description() { no_cuda("device_description"); }
std::vector<float> time_calls_ms(const std::function<void()>&, int) { no_cuda("time_calls_ms"); }
CUstream_st* stream() { no_cuda("stream"); }
MemoryStats memory_stats() { no_cuda("memory_stats"); }
void reset_peak_memory() { no_cuda("reset_peak_memory"); }
void empty_cache() { no_cuda("empty_cache"); }
size_t free_device_memory() { no_cuda("free_device_memory"); }
size_t size_class(size_t) { no_cuda("size_class"); }
void poison_cache(int) { no_cuda("poison_cache"); }
void check_status(int, const char*, const char*, int) { no_cuda("check_status"); }
void check_launch(const char*) { no_cuda("check_launch"); }
int input_error_code(const char*) { no_cuda("input_error_code"); }
long long* input_error_record() { no_cuda("input_error_record"); }
void check_input_errors() { no_cuda("check_input_errors"); }

// ---- page_copy.h ----------------------------------------------------------------------------------------------
void* pinned_alloc(size_t) { no_cuda("pinned_alloc"); }
void pinned_free(void* p) {
  if (p) no_cuda("pinned_free");
}
void side_begin() { no_cuda("side_begin"); }
void side_copy(void*, bool, const void*, bool, size_t) { no_cuda("side_copy"); }
SideEvent side_end() { no_cuda("side_end"); }
void wait_side(SideEvent) { no_cuda("wait_side"); }
CUstream_st* side_stream() { no_cuda("side_stream"); }

// ---- page_gather.h --------------------------------------------------------------------------------------------
void side_gather(const void* const*, void* const*, int64_t, size_t) { no_cuda("side_gather"); }

// ---- kernels taking a dtype -------------------------------------------------------------------------------------
void copy_strided(void*, DType, const StridedLayout&, const void*, DType, const StridedLayout&) {
  no_cuda("copy_strided");
}
void fill_strided(void*, DType, const StridedLayout&, double) { no_cuda("fill_strided"); }
void hsa_convert(DType, const void*, DType, void*, int64_t) { no_cuda("hsa_convert"); }
int64_t routing_builds() { no_cuda("routing_builds"); }
void add_scaled_f64(double*, const double*, double, int64_t) { no_cuda("add_scaled_f64"); }
void hsa_attention_check_supported(const char*, DType, const HsaDims&) { no_cuda("hsa_attention"); }
void hsa_attention_forward(DType, const void*, const void*, const void*, const int32_t*, const float*, double,
                           const HsaDims&, void*, float*, SharedRouting*) {
  no_cuda("hsa_attention_forward");
}
void hsa_attention_backward(DType, const void*, const void*, const void*, const void*, const int32_t*, const float*,
                            const float*, double, const HsaDims&, void*, void*, void*, float*,
                            const detail::Routing*) {
  no_cuda("hsa_attention_backward");
}
void hsa_decode_forward(DType, const void*, const void*, const void*, const int32_t*, const float*, double,
                        const HsaDims&, void*, float*) {
  no_cuda("hsa_decode_forward");
}
void retrieval_check_supported(const char*, DType, const RetrievalDims&) { no_cuda("retrieval"); }
const char* retrieval_kernel_name(RetrievalKernel) { no_cuda("retrieval_kernel_name"); }
RetrievalKernel retrieval_tensor_core_kernel() { no_cuda("retrieval_tensor_core_kernel"); }
RetrievalKernel retrieval_kernel_for(DType, const void*, const void*, const RetrievalDims&) {
  no_cuda("retrieval_kernel_for");
}
void retrieval_forward(DType, const void*, const void*, int32_t*, float*, float*, const RetrievalDims&, double,
                       RetrievalKernel) {
  no_cuda("retrieval_forward");
}
bool block_attention_supported(const BlockAttentionDims&) { no_cuda("block_attention_supported"); }
std::string block_attention_limits() { no_cuda("block_attention_limits"); }
void retrieval_backward(DType, const float*, const void*, const void*, const int32_t*, const float*, const float*,
                        void*, void*, const RetrievalDims&, double, const detail::Routing*) {
  no_cuda("retrieval_backward");
}

// ---- kernels templated on the storage type (float, bf16): one specialisation per type -------------------------
#define HSA_NO_CUDA_STORAGE_KERNELS(T)                                                                               \
  template <> void adamw_step<T>(float*, const T*, float*, float*, int64_t, double, double, double, double, double, \
                                 int64_t) {                                                                         \
    no_cuda("adamw_step");                                                                                          \
  }                                                                                                                 \
  template <> void chunk_mean_forward<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t) {                        \
    no_cuda("chunk_mean_forward");                                                                                  \
  }                                                                                                                 \
  template <> void chunk_mean_backward<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t) {                       \
    no_cuda("chunk_mean_backward");                                                                                 \
  }                                                                                                                 \
  template <>                                                                                                       \
  void block_attention_forward<T>(const T*, const T*, const T*, T*, float*, const BlockAttentionDims&, double) {    \
    no_cuda("block_attention_forward");                                                                             \
  }                                                                                                                 \
  template <>                                                                                                       \
  void block_attention_backward<T>(const T*, const T*, const T*, const T*, const T*, const float*, T*, T*, T*,      \
                                   const BlockAttentionDims&, double) {                                             \
    no_cuda("block_attention_backward");                                                                            \
  }                                                                                                                 \
  template <>                                                                                                       \
  CrossEntropySums cross_entropy_forward<T>(const T*, const int32_t*, float*, int64_t, int64_t, int32_t) {          \
    no_cuda("cross_entropy_forward");                                                                               \
  }                                                                                                                 \
  template <>                                                                                                       \
  void cross_entropy_backward<T>(const T*, const int32_t*, const float*, T*, int64_t, int64_t, int32_t, double) {   \
    no_cuda("cross_entropy_backward");                                                                              \
  }                                                                                                                 \
  template <> void add<T>(const T*, const T*, T*, int64_t) { no_cuda("add"); }                                      \
  template <> void add_scaled<T>(T*, const T*, float, int64_t) { no_cuda("add_scaled"); }                           \
  template <> void add_scaled_strided<T>(T*, const int64_t*, const int64_t*, int, const T*, float) {                \
    no_cuda("add_scaled_strided");                                                                                  \
  }                                                                                                                 \
  template <> void scale<T>(const T*, float, T*, int64_t) { no_cuda("scale"); }                                     \
  template <> void accumulate_sum_of_squares<T>(const T* const*, const int64_t*, int64_t, double*) {                \
    no_cuda("accumulate_sum_of_squares");                                                                           \
  }                                                                                                                 \
  template <> void embedding_forward<T>(const T*, const int32_t*, T*, int64_t, int64_t, int64_t) {                  \
    no_cuda("embedding_forward");                                                                                   \
  }                                                                                                                 \
  template <> void embedding_backward<T>(const T*, const int32_t*, T*, int64_t, int64_t, int64_t) {                 \
    no_cuda("embedding_backward");                                                                                  \
  }                                                                                                                 \
  template <>                                                                                                       \
  void gemm<T>(bool, bool, int64_t, int64_t, int64_t, float, const T*, int64_t, const T*, int64_t, float, T*,       \
               int64_t) {                                                                                           \
    no_cuda("gemm");                                                                                                \
  }                                                                                                                 \
  template <>                                                                                                       \
  void grouped_gemm_rows<T>(const int32_t*, int64_t, int64_t, int64_t, int64_t, const T*, int64_t, const T*,        \
                            int64_t, int64_t, bool, float, T*, int64_t) {                                           \
    no_cuda("grouped_gemm_rows");                                                                                   \
  }                                                                                                                 \
  template <>                                                                                                       \
  void grouped_gemm_k<T>(const int32_t*, int64_t, int64_t, int64_t, const T*, int64_t, const T*, int64_t, float,    \
                         T*, int64_t, int64_t, int) {                                                               \
    no_cuda("grouped_gemm_k");                                                                                      \
  }                                                                                                                 \
  template <> void linear_forward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t) {                           \
    no_cuda("linear_forward");                                                                                      \
  }                                                                                                                 \
  template <> void linear_backward<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t, int64_t) {            \
    no_cuda("linear_backward");                                                                                     \
  }                                                                                                                 \
  template <>                                                                                                       \
  void moe_forward<T>(const T*, const MoeDeviceWeights<T>&, const MoeDims&, double, T*, float*, int32_t*, float*,   \
                      T*, T*, double*) {                                                                            \
    no_cuda("moe_forward");                                                                                         \
  }                                                                                                                 \
  template <>                                                                                                       \
  void moe_backward<T>(const T*, double, const T*, const MoeDeviceWeights<T>&, const MoeDims&, const float*,        \
                       const int32_t*, const float*, const T*, const T*, T*, const MoeDeviceGrads<T>&) {            \
    no_cuda("moe_backward");                                                                                        \
  }                                                                                                                 \
  template <>                                                                                                       \
  void rmsnorm_forward<T>(const T*, const T*, T*, float*, int64_t, int64_t, double) {                               \
    no_cuda("rmsnorm_forward");                                                                                     \
  }                                                                                                                 \
  template <>                                                                                                       \
  void rmsnorm_backward<T>(const T*, const T*, const T*, const float*, T*, T*, int64_t, int64_t) {                  \
    no_cuda("rmsnorm_backward");                                                                                    \
  }                                                                                                                 \
  template <> void rope_rotate<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int) {         \
    no_cuda("rope_rotate");                                                                                         \
  }                                                                                                                 \
  template <> void swa_forward<T>(const T*, const T*, const T*, T*, float*, const SwaDims&, double) {               \
    no_cuda("swa_forward");                                                                                         \
  }                                                                                                                 \
  template <>                                                                                                       \
  void swa_backward<T>(const T*, const T*, const T*, const T*, const T*, const float*, float*, T*, T*, T*,          \
                       const SwaDims&, double) {                                                                    \
    no_cuda("swa_backward");                                                                                        \
  }                                                                                                                 \
  template <> void swiglu_forward<T>(const T*, const T*, T*, int64_t) { no_cuda("swiglu_forward"); }                \
  template <> void swiglu_backward<T>(const T*, const T*, const T*, T*, T*, int64_t) { no_cuda("swiglu_backward"); }

HSA_NO_CUDA_STORAGE_KERNELS(float)
HSA_NO_CUDA_STORAGE_KERNELS(bf16)
#undef HSA_NO_CUDA_STORAGE_KERNELS

}  // namespace hsa::cuda

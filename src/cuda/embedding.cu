#include "cuda/embedding.h"

#include "cuda/kernel_util.cuh"

#include <type_traits>

namespace hsa::cuda {

namespace {

// One thread per output value; a bad id gives a zero row and is reported once (by the row's first thread).
template <class T>
__global__ void embedding_forward_kernel(const T* table, const int32_t* ids, T* y, int64_t n, int64_t dm,
                                         int64_t vocab_size, long long* error, int code) {
  for (int64_t idx = global_thread(); idx < n * dm; idx += grid_threads()) {
    int64_t row = idx / dm, col = idx % dm;
    int32_t id = ids[row];
    if (id < 0 || id >= vocab_size) {
      if (col == 0) report_input_error(error, code, row, id, vocab_size);
      y[idx] = T{};
      continue;
    }
    y[idx] = table[int64_t(id) * dm + col];
  }
}

template <class T>
__global__ void embedding_backward_kernel(const T* dy, const int32_t* ids, float* dtable, int64_t n, int64_t dm,
                                          int64_t vocab_size, long long* error, int code) {
  for (int64_t idx = global_thread(); idx < n * dm; idx += grid_threads()) {
    int64_t row = idx / dm, col = idx % dm;
    int32_t id = ids[row];
    if (id < 0 || id >= vocab_size) {
      if (col == 0) report_input_error(error, code, row, id, vocab_size);
      continue;
    }
    atomicAdd(dtable + int64_t(id) * dm + col, to_f32(dy[idx]));
  }
}

__global__ void f32_to_bf16_kernel(const float* src, __nv_bfloat16* dst, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) dst[i] = __float2bfloat16_rn(src[i]);
}

}  // namespace

template <class T>
void embedding_forward(const T* table, const int32_t* ids, T* y, int64_t n, int64_t dm, int64_t vocab_size) {
  if (n * dm == 0) return;
  static const int code = input_error_code("embedding_forward: 'ids' holds an id outside the vocabulary");
  embedding_forward_kernel<<<grid_for(n * dm, 256), 256, 0, stream()>>>(dev(table), ids, dev(y), n, dm, vocab_size,
                                                                        input_error_record(), code);
  check_launch("embedding_forward_kernel");
}

template <class T>
void embedding_backward(const T* dy, const int32_t* ids, T* dtable, int64_t n, int64_t dm, int64_t vocab_size) {
  static const int code = input_error_code("embedding_backward: 'ids' holds an id outside the vocabulary");
  const int64_t table_size = vocab_size * dm;
  if (table_size == 0) return;
  // f32 tables accumulate in place; bf16 ones in an f32 scratch table, rounded once at the end.
  DeviceBuffer<float> scratch(std::is_same_v<T, float> ? 1 : table_size);
  float* acc = std::is_same_v<T, float> ? reinterpret_cast<float*>(dtable) : scratch.get();
  zero(acc, sizeof(float) * size_t(table_size));
  if (n * dm > 0) {
    embedding_backward_kernel<<<grid_for(n * dm, 256), 256, 0, stream()>>>(dev(dy), ids, acc, n, dm, vocab_size,
                                                                           input_error_record(), code);
    check_launch("embedding_backward_kernel");
  }
  if constexpr (!std::is_same_v<T, float>) {
    f32_to_bf16_kernel<<<grid_for(table_size, 256), 256, 0, stream()>>>(acc, dev(dtable), table_size);
    check_launch("f32_to_bf16_kernel");
  }
}

template void embedding_forward<float>(const float*, const int32_t*, float*, int64_t, int64_t, int64_t);
template void embedding_forward<bf16>(const bf16*, const int32_t*, bf16*, int64_t, int64_t, int64_t);
template void embedding_backward<float>(const float*, const int32_t*, float*, int64_t, int64_t, int64_t);
template void embedding_backward<bf16>(const bf16*, const int32_t*, bf16*, int64_t, int64_t, int64_t);

}  // namespace hsa::cuda

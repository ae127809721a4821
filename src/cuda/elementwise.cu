#include "cuda/elementwise.h"

#include "cuda/kernel_util.cuh"

#include <hsa/error.h>

#include <vector>

namespace hsa::cuda {

namespace {

// The contiguous kernels run for_each_pack: 16-byte packs when every pointer is pack-aligned (packed), else
// width 1. The arithmetic per element is the same either way.

struct AddOp {
  __device__ float operator()(float x, float y) const { return x + y; }
};
struct AddScaledOp {
  float alpha;
  __device__ float operator()(float x, float y) const { return x + alpha * y; }
};

__global__ void add_scaled_f64_kernel(double* dst, const double* src, double alpha, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) dst[i] += alpha * src[i];
}

template <class T>
__global__ void add_scaled_strided_kernel(T* dst, StridedLayout view, const T* src, float alpha, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t offset = strided_offset(view, i);
    dst[offset] = from_f32<T>(to_f32(dst[offset]) + alpha * to_f32(src[i]));
  }
}

template <class T> __global__ void scale_kernel(const T* x, float s, T* out, int64_t n, bool packed) {
  for_each_pack<kPack<T>>(n, packed, [=](int64_t i, auto width) {
    constexpr int W = decltype(width)::value;
    float v[W];
    load_pack<W>(x + i, v);
#pragma unroll
    for (int k = 0; k < W; ++k) v[k] *= s;
    store_pack<W>(out + i, v);
  });
}

// ---- sum of squares over a list of tensors, in one launch ---------------------------------------------------------
// Tensor t owns blocks [first_block[t], first_block[t + 1]); each block sums kSumBlockElements of it (f32 per thread,
// then block_sum) into partial[block] (f64). One block then adds the partials in a fixed tree order: the result does
// not depend on scheduling.
constexpr int kSumThreads = 256;
constexpr int64_t kSumBlockElements = 16 * 1024;

template <class T> struct SumPart {
  const T* x;
  int64_t n;
  int64_t first_block;
  int packed;
};

template <class T>
__global__ void __launch_bounds__(kSumThreads) sum_of_squares_kernel(const SumPart<T>* parts, int count,
                                                                     double* partial) {
  __shared__ float scratch[32];
  int lo = 0, hi = count - 1;  // the last part whose first block is <= this block
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (parts[mid].first_block <= int64_t(blockIdx.x)) lo = mid;
    else hi = mid - 1;
  }
  const SumPart<T> part = parts[lo];
  const int64_t begin = (int64_t(blockIdx.x) - part.first_block) * kSumBlockElements;
  const int64_t n = min(kSumBlockElements, part.n - begin);
  const T* x = part.x + begin;
  float sum = 0.f;
  // A block-local pack loop (for_each_pack strides over the whole grid).
  auto body = [&](int64_t i, auto width) {
    constexpr int W = decltype(width)::value;
    float v[W];
    load_pack<W>(x + i, v);
#pragma unroll
    for (int k = 0; k < W; ++k) sum += v[k] * v[k];
  };
  constexpr int V = kPack<T>;
  if (part.packed) {
    for (int64_t i = int64_t(threadIdx.x) * V; i + V <= n; i += int64_t(kSumThreads) * V) body(i, Width<V>());
    const int64_t tail = n / V * V + threadIdx.x;
    if (tail < n) body(tail, Width<1>());
  } else {
    for (int64_t i = threadIdx.x; i < n; i += kSumThreads) body(i, Width<1>());
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = double(sum);
}

constexpr int kFinalThreads = 1024;

__global__ void __launch_bounds__(kFinalThreads) sum_partials_kernel(const double* partial, int64_t count,
                                                                     double* acc) {
  __shared__ double sums[kFinalThreads];
  double s = 0;
  for (int64_t i = threadIdx.x; i < count; i += kFinalThreads) s += partial[i];
  sums[threadIdx.x] = s;
  __syncthreads();
  for (int half = kFinalThreads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) sums[threadIdx.x] += sums[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *acc += sums[0];
}

}  // namespace

template <class T> void accumulate_sum_of_squares(const T* const* xs, const int64_t* ns, int64_t count, double* acc) {
  using D = device_t<T>;
  std::vector<SumPart<D>> parts;
  int64_t blocks = 0;
  for (int64_t t = 0; t < count; ++t) {
    if (ns[t] == 0) continue;
    parts.push_back({dev(xs[t]), ns[t], blocks, packs_aligned<kPack<D>>(dev(xs[t]))});
    blocks += (ns[t] + kSumBlockElements - 1) / kSumBlockElements;
  }
  if (parts.empty()) return;
  HSA_CHECK(blocks <= 0x7fffffff, "cuda::accumulate_sum_of_squares: {} blocks", blocks);
  DeviceBuffer<SumPart<D>> table(int64_t(parts.size()));
  DeviceBuffer<double> partial(blocks);
  copy(table.get(), true, parts.data(), false, sizeof(SumPart<D>) * parts.size());
  sum_of_squares_kernel<<<unsigned(blocks), kSumThreads, 0, stream()>>>(table.get(), int(parts.size()),
                                                                        partial.get());
  check_launch("sum_of_squares_kernel");
  sum_partials_kernel<<<1, kFinalThreads, 0, stream()>>>(partial.get(), blocks, acc);
  check_launch("sum_partials_kernel");
}

template <class T> void add(const T* a, const T* b, T* out, int64_t n) {
  zip_packs(dev(a), dev(b), dev(out), n, AddOp{}, "add (zip_packs_kernel)");
}

template <class T> void add_scaled(T* dst, const T* src, float alpha, int64_t n) {
  zip_packs(dev(dst), dev(src), dev(dst), n, AddScaledOp{alpha}, "add_scaled (zip_packs_kernel)");
}

void add_scaled_f64(double* dst, const double* src, double alpha, int64_t n) {
  if (n == 0) return;
  add_scaled_f64_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dst, src, alpha, n);
  check_launch("add_scaled_f64_kernel");
}

template <class T>
void add_scaled_strided(T* dst, const int64_t* shape, const int64_t* strides, int ndim, const T* src, float alpha) {
  StridedLayout view = strided_layout("cuda::add_scaled_strided", shape, strides, ndim);
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  if (n == 0) return;
  add_scaled_strided_kernel<<<grid_for(n, 256), 256, 0, stream()>>>(dev(dst), view, dev(src), alpha, n);
  check_launch("add_scaled_strided_kernel");
}

template <class T> void scale(const T* x, float s, T* out, int64_t n) {
  if (n == 0) return;
  const bool packed = packs_aligned<kPack<T>>(x, out);
  scale_kernel<<<grid_for_packs(n, kPack<T>, 256), 256, 0, stream()>>>(dev(x), s, dev(out), n, packed);
  check_launch("scale_kernel");
}

template void add<float>(const float*, const float*, float*, int64_t);
template void add<bf16>(const bf16*, const bf16*, bf16*, int64_t);
template void add_scaled<float>(float*, const float*, float, int64_t);
template void add_scaled<bf16>(bf16*, const bf16*, float, int64_t);
template void add_scaled_strided<float>(float*, const int64_t*, const int64_t*, int, const float*, float);
template void add_scaled_strided<bf16>(bf16*, const int64_t*, const int64_t*, int, const bf16*, float);
template void accumulate_sum_of_squares<float>(const float* const*, const int64_t*, int64_t, double*);
template void accumulate_sum_of_squares<bf16>(const bf16* const*, const int64_t*, int64_t, double*);
template void scale<float>(const float*, float, float*, int64_t);
template void scale<bf16>(const bf16*, float, bf16*, int64_t);

}  // namespace hsa::cuda

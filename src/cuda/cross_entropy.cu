#include "cuda/cross_entropy.h"

#include "cuda/kernel_util.cuh"

namespace hsa::cuda {

namespace {

constexpr int kRowThreads = 256, kReduceThreads = 1024;

__device__ __forceinline__ bool target_ok(int32_t t, int64_t v) { return t >= 0 && t < v; }

// One block per row: lse = max + log(sum exp(x - max)); row_loss = lse - x[target] (0 for ignored rows).
template <class T>
__global__ void cross_entropy_forward_kernel(const T* logits, const int32_t* targets, float* lse, double* row_loss,
                                             int64_t n, int64_t v, int32_t ignore_index, long long* error,
                                             int code) {
  __shared__ float scratch[32];
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const T* x = logits + r * v;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) mx = fmaxf(mx, to_f32(x[j]));
    mx = block_max(mx, scratch);
    float sum = 0.f;
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) sum += expf(to_f32(x[j]) - mx);
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) {
      double row_lse = double(mx) + log(double(sum));
      lse[r] = float(row_lse);
      int32_t t = targets[r];
      if (t == ignore_index) {
        row_loss[r] = 0.0;
      } else if (!target_ok(t, v)) {
        report_input_error(error, code, r, t, v);
        row_loss[r] = 0.0;
      } else {
        row_loss[r] = row_lse - double(to_f32(x[t]));
      }
    }
  }
}

// Single block: sums[0] = sum of row losses, in a fixed order (strided per thread, then a tree);
// counts[0] = rows with a valid, not ignored target.
__global__ void cross_entropy_sum_kernel(const double* row_loss, const int32_t* targets, int64_t n, int64_t v,
                                         int32_t ignore_index, double* sums, long long* counts) {
  __shared__ double s_loss[kReduceThreads];
  __shared__ long long s_count[kReduceThreads];
  double loss = 0.0;
  long long count = 0;
  for (int64_t r = threadIdx.x; r < n; r += blockDim.x) {
    loss += row_loss[r];
    count += targets[r] != ignore_index && target_ok(targets[r], v);
  }
  s_loss[threadIdx.x] = loss;
  s_count[threadIdx.x] = count;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      s_loss[threadIdx.x] += s_loss[threadIdx.x + half];
      s_count[threadIdx.x] += s_count[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    sums[0] = s_loss[0];
    counts[0] = s_count[0];
  }
}

__global__ void cross_entropy_count_kernel(const int32_t* targets, int64_t n, int64_t v, int32_t ignore_index,
                                           long long* counts) {
  __shared__ long long s_count[kReduceThreads];
  long long count = 0;
  for (int64_t r = threadIdx.x; r < n; r += blockDim.x) count += targets[r] != ignore_index && target_ok(targets[r], v);
  s_count[threadIdx.x] = count;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) s_count[threadIdx.x] += s_count[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) counts[0] = s_count[0];
}

// One block per row: dx = scale * exp(x - lse), minus scale at the target; zero rows for ignored targets.
template <class T>
__global__ void cross_entropy_backward_kernel(const T* logits, const int32_t* targets, const float* lse, T* dlogits,
                                              int64_t n, int64_t v, int32_t ignore_index, double dloss,
                                              const long long* counts, long long* error, int code) {
  const long long count = counts[0];
  const float s = count > 0 ? float(dloss / double(count)) : 0.f;
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const T* x = logits + r * v;
    T* dx = dlogits + r * v;
    int32_t t = targets[r];
    bool counted = t != ignore_index && target_ok(t, v);
    if (t != ignore_index && !counted && threadIdx.x == 0) report_input_error(error, code, r, t, v);
    const float row_lse = lse[r];
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
      float g = counted ? s * expf(to_f32(x[j]) - row_lse) : 0.f;
      if (counted && j == t) g -= s;
      dx[j] = from_f32<T>(g);
    }
  }
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(std::min<int64_t>(rows, 65535LL * 4)); }

}  // namespace

template <class T>
CrossEntropySums cross_entropy_forward(const T* logits, const int32_t* targets, float* lse, int64_t n, int64_t v,
                                       int32_t ignore_index) {
  static const int code =
      input_error_code("cross_entropy_forward: 'targets' holds a target outside the vocabulary (not ignore_index)");
  if (n == 0) return {0.0, 0};
  DeviceBuffer<double> row_loss(n), sums(1);
  DeviceBuffer<long long> counts(1);
  cross_entropy_forward_kernel<<<row_blocks(n), kRowThreads, 0, stream()>>>(
      dev(logits), targets, lse, row_loss.get(), n, v, ignore_index, input_error_record(), code);
  check_launch("cross_entropy_forward_kernel");
  cross_entropy_sum_kernel<<<1, kReduceThreads, 0, stream()>>>(row_loss.get(), targets, n, v, ignore_index,
                                                               sums.get(), counts.get());
  check_launch("cross_entropy_sum_kernel");
  CrossEntropySums out{0.0, 0};
  long long count = 0;
  copy(&out.total, false, sums.get(), true, sizeof(double));  // waits, and throws on a bad target
  copy(&count, false, counts.get(), true, sizeof(long long));
  out.count = count;
  return out;
}

template <class T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const float* lse, T* dlogits, int64_t n,
                            int64_t v, int32_t ignore_index, double dloss) {
  static const int code =
      input_error_code("cross_entropy_backward: 'targets' holds a target outside the vocabulary (not ignore_index)");
  if (n == 0) return;
  DeviceBuffer<long long> counts(1);
  cross_entropy_count_kernel<<<1, kReduceThreads, 0, stream()>>>(targets, n, v, ignore_index, counts.get());
  check_launch("cross_entropy_count_kernel");
  cross_entropy_backward_kernel<<<row_blocks(n), kRowThreads, 0, stream()>>>(
      dev(logits), targets, lse, dev(dlogits), n, v, ignore_index, dloss, counts.get(), input_error_record(), code);
  check_launch("cross_entropy_backward_kernel");
}

template CrossEntropySums cross_entropy_forward<float>(const float*, const int32_t*, float*, int64_t, int64_t,
                                                       int32_t);
template CrossEntropySums cross_entropy_forward<bf16>(const bf16*, const int32_t*, float*, int64_t, int64_t, int32_t);
template void cross_entropy_backward<float>(const float*, const int32_t*, const float*, float*, int64_t, int64_t,
                                            int32_t, double);
template void cross_entropy_backward<bf16>(const bf16*, const int32_t*, const float*, bf16*, int64_t, int64_t,
                                           int32_t, double);

}  // namespace hsa::cuda

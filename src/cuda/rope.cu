#include "cuda/rope.h"

#include "cuda/kernel_util.cuh"

namespace hsa::cuda {

namespace {

// cos/sin [L, D/2] in double, rounded to f32 once: the trigonometry costs L*D/2 evaluations whatever B and H are.
__global__ void rope_table_kernel(float* cos_t, float* sin_t, int64_t seq_len, int64_t half, int64_t head_dim,
                                  int64_t position_offset, double theta, int sign) {
  for (int64_t idx = global_thread(); idx < seq_len * half; idx += grid_threads()) {
    int64_t l = idx / half, i = idx % half;
    double freq = pow(theta, -2.0 * double(i) / double(head_dim));
    double a = double(position_offset + l) * freq;  // exact position: far below 2^53
    double s, c;
    sincos(a, &s, &c);
    cos_t[idx] = float(c);
    sin_t[idx] = float(sign * s);
  }
}

// One thread per rotated pair (b, l, h, i).
template <class T>
__global__ void rope_apply_kernel(const T* x, T* y, const float* cos_t, const float* sin_t, int64_t batch,
                                  int64_t seq_len, int64_t heads, int64_t half) {
  const int64_t pairs = batch * seq_len * heads * half;
  for (int64_t idx = global_thread(); idx < pairs; idx += grid_threads()) {
    int64_t i = idx % half, blh = idx / half, l = (blh / heads) % seq_len;
    int64_t base = blh * 2 * half;
    float c = cos_t[l * half + i], s = sin_t[l * half + i];
    float x1 = to_f32(x[base + i]), x2 = to_f32(x[base + i + half]);
    y[base + i] = from_f32<T>(x1 * c - x2 * s);
    y[base + i + half] = from_f32<T>(x1 * s + x2 * c);
  }
}

}  // namespace

template <class T>
void rope_rotate(const T* x, T* y, int64_t batch, int64_t seq_len, int64_t heads, int64_t head_dim,
                 int64_t position_offset, double theta, int sign) {
  const int64_t half = head_dim / 2, pairs = batch * seq_len * heads * half;
  if (pairs == 0) return;
  DeviceBuffer<float> cos_t(seq_len * half), sin_t(seq_len * half);
  rope_table_kernel<<<grid_for(seq_len * half, 256), 256, 0, stream()>>>(cos_t.get(), sin_t.get(), seq_len, half,
                                                                          head_dim, position_offset, theta, sign);
  check_launch("rope_table_kernel");
  rope_apply_kernel<<<grid_for(pairs, 256), 256, 0, stream()>>>(dev(x), dev(y), cos_t.get(), sin_t.get(), batch,
                                                                seq_len, heads, half);
  check_launch("rope_apply_kernel");
}

template void rope_rotate<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int);
template void rope_rotate<bf16>(const bf16*, bf16*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int);

}  // namespace hsa::cuda

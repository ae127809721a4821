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

// One thread per W rotated pairs (b, l, h, i..i+W-1): packs of the first and of the second half of the head row.
template <class T>
__global__ void rope_apply_kernel(const T* x, T* y, const float* cos_t, const float* sin_t, int64_t pairs,
                                  int64_t seq_len, int64_t heads, int64_t half, bool packed) {
  for_each_pack<kPack<T>>(pairs, packed, [=](int64_t idx, auto width) {
    constexpr int W = decltype(width)::value;
    constexpr int F = W < 4 ? W : 4;  // table values per f32 access
    const int64_t i = idx % half, blh = idx / half, l = (blh / heads) % seq_len;
    const int64_t base = blh * 2 * half + i, t = l * half + i;
    float x1[W], x2[W], c[W], s[W];
    load_pack<W>(x + base, x1);
    load_pack<W>(x + base + half, x2);
#pragma unroll
    for (int j = 0; j < W; j += F) {
      load_pack<F>(cos_t + t + j, *reinterpret_cast<float(*)[F]>(c + j));
      load_pack<F>(sin_t + t + j, *reinterpret_cast<float(*)[F]>(s + j));
    }
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const float a = x1[k], b = x2[k];
      x1[k] = a * c[k] - b * s[k];
      x2[k] = a * s[k] + b * c[k];
    }
    store_pack<W>(y + base, x1);
    store_pack<W>(y + base + half, x2);
  });
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
  // Packs never straddle a half row: half a multiple of the pack (the tables are then aligned too).
  const bool packed = half % kPack<T> == 0 && packs_aligned<kPack<T>>(x, y);
  rope_apply_kernel<<<grid_for_packs(pairs, kPack<T>, 256), 256, 0, stream()>>>(
      dev(x), dev(y), cos_t.get(), sin_t.get(), pairs, seq_len, heads, half, packed);
  check_launch("rope_apply_kernel");
}

template void rope_rotate<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int);
template void rope_rotate<bf16>(const bf16*, bf16*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int);

}  // namespace hsa::cuda

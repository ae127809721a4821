// bf16 sliding-window forward in registers (swa_fwd_mma_kernel); see swa_attention_mma.cuh.
#include "cuda/swa_attention_mma.cuh"

#include <cmath>

namespace hsa::cuda::swa_attn {

namespace {

// out [B, Lq, HQ, D], lse [B, Lq, HQ]; grid (ceil(Lq G / 128), H, B).
template <int D>
__global__ void __launch_bounds__(kMmaThreads, D <= 64 ? 2 : 1)
    swa_fwd_mma_kernel(const bf16_t* __restrict__ q, const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                       bf16_t* __restrict__ out, float* __restrict__ lse, Dims d, float scale_log2) {
  constexpr int LD = D + 8, NK = kKeyTile / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16_t* Qs = reinterpret_cast<bf16_t*>(smem);  // [128][LD]
  bf16_t* KVs = Qs + kRowTile * LD;              // [2][K, V][64][LD]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane / 4, tig = lane % 4;
  const QueryTile qt(d, D);
  const GroupRows& rows = qt.rows;
  bf16_t* Qw = Qs + warp * 16 * LD;  // this warp's rows: Q, later the staged outputs

  load_group_rows<kRowTile, D, kMmaThreads>(Qs, q, rows, qt.r0, rows.count);
  cp_async_commit();
  // Q fragments in registers, except at D = 64: two blocks per SM cap the kernel at 128 registers, and with Q in
  // registers it spilled; from shared memory Q costs one ldmatrix per eight of K and V.
  RowsA<D, LD, (D != 64)> qa;
  float o[D / 8][4] = {}, m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // l: this lane's columns only
  pipeline(
      qt.tiles, [&](int n, int buf) { load_key_tile<D>(KVs, k, v, qt, d, n, buf); },
      [&] { qa.load(smem_addr(Qw)); },
      [&](int n, int buf) {
        const int j0 = qt.start(n);
        if (!qt.active(j0)) return;
        const uint32_t ks = smem_addr(KVs + buf * 2 * kKeyTile * LD), vs = ks + kKeyTile * LD * 2;
        float sc[NK][4] = {};
        mma_abt<kKeyTile, D, LD>(sc, qa, ks);
#pragma unroll
        for (int j = 0; j < NK; ++j)
#pragma unroll
          for (int u = 0; u < 4; ++u) sc[j][u] *= scale_log2;
        if (!qt.full(j0)) mask_keys(sc, d, qt.lane_tok, j0, -INFINITY);
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int j = 0; j < NK; ++j) {
          mx[0] = fmaxf(mx[0], fmaxf(sc[j][0], sc[j][1]));
          mx[1] = fmaxf(mx[1], fmaxf(sc[j][2], sc[j][3]));
        }
        float base[2], corr[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {  // a row's scores live in the 4 lanes of its quad
          mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
          mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
          base[h] = mx[h] == -INFINITY ? 0.0f : mx[h];  // nothing seen yet: p = 0, no -inf - -inf
          corr[h] = exp2f(m[h] - base[h]);
          m[h] = mx[h];
          l[h] *= corr[h];
        }
#pragma unroll
        for (int j = 0; j < NK; ++j)
#pragma unroll
          for (int u = 0; u < 4; ++u) {
            sc[j][u] = exp2f(sc[j][u] - base[u / 2]);
            l[u / 2] += sc[j][u];
          }
#pragma unroll
        for (int j = 0; j < D / 8; ++j) {
          o[j][0] *= corr[0];
          o[j][1] *= corr[0];
          o[j][2] *= corr[1];
          o[j][3] *= corr[1];
        }
        uint32_t pa[kKeyTile / 16][4];
        pack_a<kKeyTile>(pa, sc);
        mma_ab<kKeyTile, D, LD>(o, pa, vs);
      });

  if (!qt.has_rows()) return;
  float inv[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    inv[h] = l[h] > 0.0f ? 1.0f / l[h] : 0.0f;
    const int r = qt.rw + gid + 8 * h;
    if (tig == 0 && r < rows.count) lse[rows.index(r)] = l[h] > 0.0f ? (m[h] + log2f(l[h])) * kLn2 : -INFINITY;
  }
  qt.store<D>(o, inv[0], inv[1], Qw, out);
}

}  // namespace

template <int D> bool forward_mma_fits(const Dims& d) { return register_path(d, MmaSmem<D>::fwd); }

template <int D>
void forward_mma(const bf16_t* q, const bf16_t* k, const bf16_t* v, bf16_t* out, float* lse, const Dims& d,
                 double scale) {
  constexpr size_t smem = MmaSmem<D>::fwd;
  allow_smem(swa_fwd_mma_kernel<D>, smem);
  swa_fwd_mma_kernel<D><<<dim3(row_tiles(d), d.kv_heads, d.batch), kMmaThreads, smem, stream()>>>(
      q, k, v, out, lse, d, float(scale * 1.4426950408889634));
  check_launch("swa_forward (mma)");
}

template bool forward_mma_fits<32>(const Dims&);
template void forward_mma<32>(const bf16_t*, const bf16_t*, const bf16_t*, bf16_t*, float*, const Dims&, double);
template bool forward_mma_fits<64>(const Dims&);
template void forward_mma<64>(const bf16_t*, const bf16_t*, const bf16_t*, bf16_t*, float*, const Dims&, double);
template bool forward_mma_fits<128>(const Dims&);
template void forward_mma<128>(const bf16_t*, const bf16_t*, const bf16_t*, bf16_t*, float*, const Dims&, double);

}  // namespace hsa::cuda::swa_attn

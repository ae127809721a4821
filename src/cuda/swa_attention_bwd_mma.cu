// bf16 sliding-window backward in registers (swa_dq_mma_kernel, swa_dkv_mma_kernel; after the delta kernel); see
// swa_attention_mma.cuh.
#include "cuda/swa_attention_mma.cuh"

#include <algorithm>
#include <cmath>

namespace hsa::cuda::swa_attn {

namespace {

// dq [B, Lq, HQ, D]; grid (ceil(Lq G / 128), H, B). dS = P (dP - delta), dq = scale dS K.
template <int D>
__global__ void __launch_bounds__(kMmaThreads, 1)
    swa_dq_mma_kernel(const bf16_t* __restrict__ dout, const bf16_t* __restrict__ q, const bf16_t* __restrict__ k,
                      const bf16_t* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ delta,
                      bf16_t* __restrict__ dq, Dims d, float scale, float scale_log2) {
  constexpr int LD = D + 8, NK = kKeyTile / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16_t* Qs = reinterpret_cast<bf16_t*>(smem);  // [128][LD]
  bf16_t* dOs = Qs + kRowTile * LD;              // [128][LD]
  bf16_t* KVs = dOs + kRowTile * LD;             // [2][K, V][64][LD]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane / 4;
  const QueryTile qt(d, D);
  const GroupRows& rows = qt.rows;

  load_group_rows<kRowTile, D, kMmaThreads>(Qs, q, rows, qt.r0, rows.count);
  load_group_rows<kRowTile, D, kMmaThreads>(dOs, dout, rows, qt.r0, rows.count);
  cp_async_commit();
  // This lane's rows: lse in the log2 domain and delta (0 for padding rows, whose q and dout are 0: dS = 0).
  float lse2[2], dl[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = qt.rw + gid + 8 * h;
    lse2[h] = r < rows.count ? lse[rows.index(r)] * kLog2e : 0.0f;
    dl[h] = r < rows.count ? delta[rows.index(r)] : 0.0f;
  }
  // Q and dO fragments in registers; at D = 128 they would push the kernel past 255 registers (spills), so there
  // they are read from shared memory at each use.
  RowsA<D, LD, D <= 64> qa, da;
  float acc[D / 8][4] = {};
  pipeline(
      qt.tiles, [&](int n, int buf) { load_key_tile<D>(KVs, k, v, qt, d, n, buf); },
      [&] {
        qa.load(smem_addr(Qs + warp * 16 * LD));
        da.load(smem_addr(dOs + warp * 16 * LD));
      },
      [&](int n, int buf) {
        const int j0 = qt.start(n);
        if (!qt.active(j0)) return;
        const uint32_t ks = smem_addr(KVs + buf * 2 * kKeyTile * LD), vs = ks + kKeyTile * LD * 2;
        float p[NK][4] = {}, ds[NK][4] = {};
        mma_abt<kKeyTile, D, LD>(p, qa, ks);
        mma_abt<kKeyTile, D, LD>(ds, da, vs);  // dP = dO V^T
#pragma unroll
        for (int j = 0; j < NK; ++j)
#pragma unroll
          for (int u = 0; u < 4; ++u) p[j][u] = exp2f(fmaf(p[j][u], scale_log2, -lse2[u / 2]));
        // Masked entries are set, not multiplied: exp2 of a score against a zero-filled key may have overflowed,
        // and a row that sees nothing has lse = -inf.
        if (!qt.full(j0)) mask_keys(p, d, qt.lane_tok, j0, 0.0f);
#pragma unroll
        for (int j = 0; j < NK; ++j)
#pragma unroll
          for (int u = 0; u < 4; ++u) ds[j][u] = p[j][u] * (ds[j][u] - dl[u / 2]);
        uint32_t sa[kKeyTile / 16][4];
        pack_a<kKeyTile>(sa, ds);
        mma_ab<kKeyTile, D, LD>(acc, sa, ks);
      });

  if (!qt.has_rows()) return;
  qt.store<D>(acc, scale, scale, Qs + warp * 16 * LD, dq);
}

// dk, dv [B, Lk, H, D]; grid (ceil(Lk / 64), H, B). dv = P^T dout and dk = scale dS^T q over the rows of all G heads.
template <int D>
__global__ void __launch_bounds__(kDkvThreads, 2)
    swa_dkv_mma_kernel(const bf16_t* __restrict__ dout, const bf16_t* __restrict__ q, const bf16_t* __restrict__ k,
                       const bf16_t* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ delta,
                       bf16_t* __restrict__ dk, bf16_t* __restrict__ dv, Dims d, float scale, float scale_log2) {
  constexpr int LD = D + 8, BR = kDkvRows, NR = BR / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16_t* Ks = reinterpret_cast<bf16_t*>(smem);  // [64][LD]
  bf16_t* Vs = Ks + kDkvKeys * LD;               // [64][LD]
  bf16_t* Rs = Vs + kDkvKeys * LD;               // [2][Q, dO][64][LD]: the row tiles
  float* lse_s = reinterpret_cast<float*>(Rs + 4 * BR * LD);  // [2][64]
  float* delta_s = lse_s + 2 * BR;                            // [2][64]
  Span* span_s = reinterpret_cast<Span*>(delta_s + 2 * BR);   // [2][64]: keys each row sees
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane / 4, tig = lane % 4;
  const int j0 = blockIdx.x * kDkvKeys, kw = j0 + 16 * warp;  // the block's and this warp's first key
  const GroupRows rows(d, blockIdx.z, blockIdx.y);
  const long long kv_off = ((long long)blockIdx.z * d.k_len * d.kv_heads + blockIdx.y) * D;
  const long long kv_stride = (long long)d.kv_heads * D;

  auto key_off = [&](int r) -> long long { return j0 + r < d.k_len ? (j0 + r) * kv_stride : -1; };
  cp_async_rows<kDkvKeys, D, LD, kDkvThreads>(Ks, k + kv_off, key_off);
  cp_async_rows<kDkvKeys, D, LD, kDkvThreads>(Vs, v + kv_off, key_off);
  cp_async_commit();
  // Rows that see some key of the block: [rlo, rhi), all heads of tokens [lo, hi).
  const Span toks = tokens_any(d, j0, min(j0 + kDkvKeys, d.k_len) - 1);
  const int rlo = toks.lo * rows.group, rhi = toks.hi > toks.lo ? toks.hi * rows.group : rlo;
  const int tiles = (rhi - rlo + BR - 1) / BR;
  const Span warp_toks = kw < d.k_len ? tokens_any(d, kw, min(kw + 16, d.k_len) - 1) : Span{0, 0};

  // This warp's K and V fragments, in registers up to D = 64 (as Q and dO in the dq kernel).
  RowsA<D, LD, D <= 64> ka, va;
  float acc_dk[D / 8][4] = {}, acc_dv[D / 8][4] = {};
  pipeline(
      tiles,
      [&](int n, int buf) {
        const int r0 = rlo + n * BR;
        bf16_t* dst = Rs + buf * 2 * BR * LD;
        load_group_rows<BR, D, kDkvThreads>(dst, q, rows, r0, rhi);
        load_group_rows<BR, D, kDkvThreads>(dst + BR * LD, dout, rows, r0, rhi);
        const int i = threadIdx.x, R = r0 + i;
        if (i < BR) {
          // Padding rows: q = dout = 0 and lse = delta = 0, so P is 1 (or masked to 0), dS = 0, P dout = 0.
          if (R < rhi) {
            cp_async_4(lse_s + buf * BR + i, lse + rows.index(R));
            cp_async_4(delta_s + buf * BR + i, delta + rows.index(R));
            span_s[buf * BR + i] = keys_any(d, rows.token(R), rows.token(R));
          } else {
            lse_s[buf * BR + i] = delta_s[buf * BR + i] = 0.0f;
            span_s[buf * BR + i] = Span{0, 0};
          }
        }
      },
      [&] {
        ka.load(smem_addr(Ks + warp * 16 * LD));
        va.load(smem_addr(Vs + warp * 16 * LD));
      },
      [&](int n, int buf) {
        const int r0 = rlo + n * BR, ta = rows.token(r0), tb = rows.token(min(r0 + BR, rhi) - 1);
        if (ta >= warp_toks.hi || tb < warp_toks.lo) return;  // no row of the tile sees this warp's keys
        const Span all = keys_all(d, ta, tb);
        const bool full = all.lo <= kw && kw + 16 <= all.hi;
        const uint32_t qs = smem_addr(Rs + buf * 2 * BR * LD), dos = qs + BR * LD * 2;
        // S^T = K_w Q^T and dP^T = V_w dO^T: [16 keys][64 rows]; entry (j, u) is key kw + gid + 8 (u / 2), row
        // r0 + 8 j + 2 tig + (u & 1).
        float p[NR][4] = {}, ds[NR][4] = {};
        mma_abt<BR, D, LD>(p, ka, qs);
        mma_abt<BR, D, LD>(ds, va, dos);
        const float* ls = lse_s + buf * BR;
        const float* dls = delta_s + buf * BR;
        const Span* sp = span_s + buf * BR;
#pragma unroll
        for (int j = 0; j < NR; ++j) {
          const int c = 8 * j + 2 * tig;
          const float2 lv = *reinterpret_cast<const float2*>(ls + c), dv2 = *reinterpret_cast<const float2*>(dls + c);
#pragma unroll
          for (int u = 0; u < 4; ++u) {
            const int h = u & 1, key = kw + gid + 8 * (u / 2);
            float x = exp2f(fmaf(p[j][u], scale_log2, -(h ? lv.y : lv.x) * kLog2e));
            if (!full && (key < sp[c + h].lo || key >= sp[c + h].hi)) x = 0.0f;
            p[j][u] = x;
            ds[j][u] = x * (ds[j][u] - (h ? dv2.y : dv2.x));
          }
        }
        uint32_t pa[BR / 16][4], sa[BR / 16][4];
        pack_a<BR>(pa, p);
        pack_a<BR>(sa, ds);
        mma_ab<BR, D, LD>(acc_dv, pa, dos);  // dV_w += P^T dO
        mma_ab<BR, D, LD>(acc_dk, sa, qs);   // dK_w += dS^T Q
      });

  // Every key of the block is written: zeros for keys that no row sees.
  bf16_t* stage = Rs + warp * 16 * LD;  // the row tiles are free after the pipeline's last barrier
  auto key_row = [&](bf16_t* base) {
    return [=](int r) -> bf16_t* { return kw + r < d.k_len ? base + kv_off + (kw + r) * kv_stride : nullptr; };
  };
  store_rows<D, LD>(acc_dk, scale, scale, stage, key_row(dk));
  store_rows<D, LD>(acc_dv, 1.0f, 1.0f, stage, key_row(dv));
}

}  // namespace

template <int D> bool backward_mma_fits(const Dims& d) {
  return register_path(d, std::max(MmaSmem<D>::dq, MmaSmem<D>::dkv));
}

// After the delta kernel.
template <int D>
void backward_mma(const bf16_t* dout, const bf16_t* q, const bf16_t* k, const bf16_t* v, const float* lse,
                  const float* delta, bf16_t* dq, bf16_t* dk, bf16_t* dv, const Dims& d, double scale) {
  const float s = float(scale), sl = float(scale * 1.4426950408889634);
  allow_smem(swa_dq_mma_kernel<D>, MmaSmem<D>::dq);
  swa_dq_mma_kernel<D><<<dim3(row_tiles(d), d.kv_heads, d.batch), kMmaThreads, MmaSmem<D>::dq, stream()>>>(
      dout, q, k, v, lse, delta, dq, d, s, sl);
  check_launch("swa_backward (dq, mma)");
  if (d.k_len == 0) return;
  allow_smem(swa_dkv_mma_kernel<D>, MmaSmem<D>::dkv);
  swa_dkv_mma_kernel<D><<<dim3(unsigned(ceil_div(d.k_len, kDkvKeys)), d.kv_heads, d.batch), kDkvThreads,
                          MmaSmem<D>::dkv, stream()>>>(dout, q, k, v, lse, delta, dk, dv, d, s, sl);
  check_launch("swa_backward (dk, dv, mma)");
}

template bool backward_mma_fits<32>(const Dims&);
template void backward_mma<32>(const bf16_t*, const bf16_t*, const bf16_t*, const bf16_t*, const float*,
                                const float*, bf16_t*, bf16_t*, bf16_t*, const Dims&, double);
template bool backward_mma_fits<64>(const Dims&);
template void backward_mma<64>(const bf16_t*, const bf16_t*, const bf16_t*, const bf16_t*, const float*,
                                const float*, bf16_t*, bf16_t*, bf16_t*, const Dims&, double);
template bool backward_mma_fits<128>(const Dims&);
template void backward_mma<128>(const bf16_t*, const bf16_t*, const bf16_t*, const bf16_t*, const float*,
                                const float*, bf16_t*, bf16_t*, bf16_t*, const Dims&, double);

}  // namespace hsa::cuda::swa_attn

// bf16 chunk-attention backward in registers (hsa_bwd_mma_kernel, then bwd_mma_finish_kernel for split items); see
// hsa_attention_kernels.cuh for the other paths.
#include "cuda/hsa_attention_kernels.cuh"
#include "cuda/mma_sync.cuh"

#include <algorithm>
#include <cmath>

namespace hsa::cuda::hsa_attn {

namespace {

// ---- bf16 backward on mma.sync (FlashAttention-2 style) ----
// Why two backward kernels: hsa_bwd_kernel (hsa_attention_bwd.cu) is the general one (f32 on CUDA cores, which the
// f32 parity of 1e-5 needs, and bf16 for shapes the fast kernel does not take); hsa_bwd_mma_kernel is the bf16
// fast path for D in {16, 32, 64, 128}, S a multiple of 16 up to 64: no f32 round trips through shared memory,
// dK/dV live in registers, a popular chunk is split over several blocks.
//
// Block = (item, split): tiles [split * tiles_per_block, ...) of the item's entries (tile = kMmaRows query rows =
// ept entries of G heads, row = entry * G + head as in gather_tile). Warp w owns keys [16w, 16w + 16) of the chunk
// (S / 16 warps) and, per tile:
//   S^T = K_w Q^T, dP^T = V_w dO^T (16 x R, f32 in registers); P^T = exp(scale S^T - lse) with the forward's lse;
//   rowdot[row] = sum_j P dP over all S keys (each warp's 16 keys, then a fixed-order sum of the warps' partials
//   through shared memory) = <dout, o_i>; wP = w P, dS = w P (dP - rowdot) scale;
//   dV_w += (wP)^T dO, dK_w += dS^T Q (16 x D f32 accumulators per warp, in registers across all tiles);
//   dS^T goes to shared memory, then dQ = dS K for 16 query rows per warp (all S keys) -> dq_part (bf16);
//   dweights[f] = sum over the entry's G heads (head order) of rowdot.
// An unsplit item writes dK/dV directly; the splits of a split item write f32 partials [part, {K, V}, S, D] that
// bwd_mma_finish_kernel sums in split order (deterministic); it also zeros the items that no token chose. Blocks
// come from a split plan (unit = entries, per_block = ept * tiles_per_block); the partial slots of item i are
// [part_base(i), part_base(i) + nsplit), see backward_mma.
constexpr int kMmaRows = 64;                 // query rows per tile (= tile_rows<bf16>())

struct MmaBwdArgs {
  const __nv_bfloat16 *q, *k, *v, *dout;
  const int32_t *flat, *begin;
  const float *weights, *lse;
  const int32_t* block_item;  // the split plan
  __nv_bfloat16 *dq_part, *dk, *dv;
  float* dkv_part;  // [parts, 2, S, D]: f32 dK, dV partials of the splits of split items
  float* dweights;
  Dims d;
  int tiles_per_block;
  int part_mul, part_add;  // part_base: (2, 0) or (1, 1), see backward_mma
  float scale_log2;        // scale * log2(e)
};

// The first f32 dK/dV partial slot of item i (used only when the item is split). (part_mul, part_add) = (1, 1)
// is the item's first block number, so slots <= blocks of the plan; (2, 0) gives slots [floor(2 a / P), ...) with
// a = begin[i], P = per_block: an item of n > P entries has ceil(n / P) <= floor(2 n / P) splits, so the items'
// ranges are disjoint, all below floor(2 slots / P).
__device__ __forceinline__ int64_t part_base(int64_t begin_i, int64_t item, int64_t per_block, int part_mul,
                                             int part_add) {
  return begin_i * part_mul / per_block + part_add * item;
}

// Dynamic shared memory of hsa_bwd_mma_kernel: K, V [S, D + 8], Q, dO [R, D + 8], dS^T [S, R + 8] (bf16; the 8
// pad elements make the ldmatrix row addresses of 8 consecutive rows hit distinct banks), then f32 rowdot
// partials [4, R], lse * log2(e) and weights per row [2 buffers, R] each.
size_t mma_bwd_smem(int64_t D, int64_t S) {
  const int64_t R = kMmaRows, LD = D + 8, LR = R + 8;
  return size_t(2 * S * LD + 2 * R * LD + S * LR) * 2 + size_t(8 * R) * 4;
}

template <int D>
__global__ void __launch_bounds__(128, 2) hsa_bwd_mma_kernel(MmaBwdArgs a) {
  constexpr int R = kMmaRows, LD = D + 8, LR = R + 8, NT = D / 8, VPR = D / 8;
  constexpr int DQC = D < 64 ? D : 64;  // dQ columns per pass (keeps the dQ accumulators at 32 registers)
  using bf16 = __nv_bfloat16;
  extern __shared__ __align__(128) unsigned char smem[];
  const Dims& d = a.d;
  const int S = int(d.S), NW = S / 16, nthreads = NW * 32, G = int(d.G), ept = d.ept;
  const int HK = int(d.H * d.K), Kslots = int(d.K), L = int(d.L);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, grp = lane / 4, tig = lane % 4;
  const int item = a.block_item[blockIdx.x];
  const int e_begin = a.begin[item], e_end = a.begin[item + 1];
  const int per_block = ept * a.tiles_per_block, nsplit = (e_end - e_begin + per_block - 1) / per_block;
  const int64_t split64 = int64_t(blockIdx.x) - plan_first_block(e_begin, item, 1, per_block);
  if (split64 >= nsplit) return;  // past the item's last split (or an item no token chose)
  const int split = int(split64);
  const int tiles = (e_end - e_begin + ept - 1) / ept;
  const int tile0 = split * a.tiles_per_block, tile1 = min(tiles, tile0 + a.tiles_per_block);
  const int64_t c = item % d.C, r = (item / d.C) % d.H, b = item / (d.C * d.H);
  const int64_t chunk_off = ((b * d.C + c) * d.S * d.H + r) * D;
  bf16* Ks = reinterpret_cast<bf16*>(smem);
  bf16* Vs = Ks + S * LD;
  bf16* Qs = Vs + S * LD;
  bf16* dOs = Qs + R * LD;
  bf16* dST = dOs + R * LD;                              // [S, LR]: dS transposed (key-major)
  float* dotp = reinterpret_cast<float*>(dST + S * LR);  // [4, R]: rowdot partial of warp w
  float* lse2 = dotp + 4 * R;                            // [2, R]: lse * log2(e) (+inf for padding rows)
  float* wrow = lse2 + 2 * R;                            // [2, R]: retrieval weight (0 for padding rows)

  for (int idx = tid; idx < S * VPR; idx += nthreads) {
    const int j = idx / VPR, x = (idx % VPR) * 8;
    cp_async_16(Ks + j * LD + x, a.k + chunk_off + int64_t(j) * d.H * D + x);
    cp_async_16(Vs + j * LD + x, a.v + chunk_off + int64_t(j) * d.H * D + x);
  }
  // Gathers tile `tile` (q and dout rows, cp.async; zeros past the last entry) and its per-row lse and weight.
  auto stage = [&](int tile) {
    const int e0 = e_begin + tile * ept, m = min(ept, e_end - e0) * G;
    for (int idx = tid; idx < R * VPR; idx += nthreads) {
      const int row = idx / VPR, x = (idx % VPR) * 8;
      bf16 *qd = Qs + row * LD + x, *od = dOs + row * LD + x;
      if (row < m) {
        const int f = a.flat[e0 + row / G], t = (f / HK) % L;
        const int64_t off = ((b * L + t) * d.HQ + r * G + row % G) * D + x;
        cp_async_16(qd, a.q + off);
        cp_async_16(od, a.dout + off);
      } else {
        *reinterpret_cast<uint4*>(qd) = make_uint4(0, 0, 0, 0);
        *reinterpret_cast<uint4*>(od) = make_uint4(0, 0, 0, 0);
      }
    }
    float *l2 = lse2 + (tile & 1) * R, *wr = wrow + (tile & 1) * R;
    for (int row = tid; row < R; row += nthreads) {
      float lv = INFINITY, wv = 0.0f;
      if (row < m) {
        const int f = a.flat[e0 + row / G], t = (f / HK) % L, i = f % Kslots;
        lv = a.lse[((b * L + t) * d.HQ + r * G + row % G) * Kslots + i] * kLog2e;
        wv = a.weights[f];
      }
      l2[row] = lv;
      wr[row] = wv;
    }
    cp_async_commit();
  };
  stage(tile0);

  float acc_dk[NT][4], acc_dv[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j)
#pragma unroll
    for (int u = 0; u < 4; ++u) acc_dk[j][u] = acc_dv[j][u] = 0.0f;
  const int key0 = warp * 16;
  // ldmatrix lane roles (see mma_sync.cuh): lane l addresses row (l & 7) of matrix l / 8.
  const int lrow = lane & 7, lhi = (lane >> 4) & 1, lmid = (lane >> 3) & 1;

  for (int tile = tile0; tile < tile1; ++tile) {
    const int e0 = e_begin + tile * ept, ne = min(ept, e_end - e0), m = ne * G;
    cp_async_wait<0>();
    __syncthreads();  // the tile (and at the start K, V) is in shared memory; the previous dQ pass is done

    // S^T = K_w Q^T and dP^T = V_w dO^T: 16 keys x R rows, R / 8 n-tiles of 16 x 8.
    float sc[R / 8][4], dp[R / 8][4];
#pragma unroll
    for (int j = 0; j < R / 8; ++j)
#pragma unroll
      for (int u = 0; u < 4; ++u) sc[j][u] = dp[j][u] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      uint32_t ak[4], av[4];
      // A (row-major, keys x d): matrices (rows 0-7 | 8-15) x (k 0-7 | 8-15) -> a[0..3].
      const int arow = key0 + lrow + lmid * 8, acol = ks * 16 + lhi * 8;
      ldmatrix_x4(ak, Ks + arow * LD + acol);
      ldmatrix_x4(av, Vs + arow * LD + acol);
#pragma unroll
      for (int p = 0; p < R / 16; ++p) {
        // B (col, k = d, n = query row): rows of Q are n; matrices (n 0-7, k 0-7), (n 0-7, k 8-15),
        // (n 8-15, k 0-7), (n 8-15, k 8-15) -> b[0], b[1] of n-tile 2p, b[0], b[1] of n-tile 2p + 1.
        const int brow = p * 16 + lrow + lhi * 8, bcol = ks * 16 + lmid * 8;
        uint32_t bq[4], bo[4];
        ldmatrix_x4(bq, Qs + brow * LD + bcol);
        ldmatrix_x4(bo, dOs + brow * LD + bcol);
        mma_bf16_16816(sc[2 * p], ak, bq[0], bq[1]);
        mma_bf16_16816(sc[2 * p + 1], ak, bq[2], bq[3]);
        mma_bf16_16816(dp[2 * p], av, bo[0], bo[1]);
        mma_bf16_16816(dp[2 * p + 1], av, bo[2], bo[3]);
      }
    }

    // P^T and this warp's part of rowdot. Element (j, u): key key0 + grp + 8 (u >= 2), row 8j + 2 tig + (u & 1).
    const float* l2 = lse2 + (tile & 1) * R;
    const float* wr = wrow + (tile & 1) * R;
    float part[R / 8][2];
#pragma unroll
    for (int j = 0; j < R / 8; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float l = l2[j * 8 + tig * 2 + h];
        sc[j][h] = exp2f(fmaf(sc[j][h], a.scale_log2, -l));
        sc[j][h + 2] = exp2f(fmaf(sc[j][h + 2], a.scale_log2, -l));
        part[j][h] = sc[j][h] * dp[j][h] + sc[j][h + 2] * dp[j][h + 2];
      }
#pragma unroll
    for (int j = 0; j < R / 8; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float x = part[j][h];
        x += __shfl_xor_sync(0xffffffffu, x, 4);
        x += __shfl_xor_sync(0xffffffffu, x, 8);
        x += __shfl_xor_sync(0xffffffffu, x, 16);
        if (grp == 0) dotp[warp * R + j * 8 + tig * 2 + h] = x;
      }
    __syncthreads();  // all rowdot partials are in

    // wP = w P (for dV) and dS = w P (dP - rowdot) scale, packed as the A fragments of the 16 x 16 blocks
    // (k = query rows 16kk..16kk+15); dS^T also to shared memory for dQ.
    uint32_t pa[R / 16][4], sa[R / 16][4];
#pragma unroll
    for (int j = 0; j < R / 8; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = j * 8 + tig * 2 + h;
        float dot = 0.0f;
        for (int w2 = 0; w2 < NW; ++w2) dot += dotp[w2 * R + row];
        const float wv = wr[row];
#pragma unroll
        for (int u = h; u < 4; u += 2) {
          const float wp = wv * sc[j][u];
          sc[j][u] = wp;
          dp[j][u] = wp * (dp[j][u] - dot) * d.scale;
        }
      }
#pragma unroll
    for (int kk = 0; kk < R / 16; ++kk) {
      pa[kk][0] = pack_bf16x2(sc[2 * kk][0], sc[2 * kk][1]);
      pa[kk][1] = pack_bf16x2(sc[2 * kk][2], sc[2 * kk][3]);
      pa[kk][2] = pack_bf16x2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
      pa[kk][3] = pack_bf16x2(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
      sa[kk][0] = pack_bf16x2(dp[2 * kk][0], dp[2 * kk][1]);
      sa[kk][1] = pack_bf16x2(dp[2 * kk][2], dp[2 * kk][3]);
      sa[kk][2] = pack_bf16x2(dp[2 * kk + 1][0], dp[2 * kk + 1][1]);
      sa[kk][3] = pack_bf16x2(dp[2 * kk + 1][2], dp[2 * kk + 1][3]);
      bf16* s0 = dST + (key0 + grp) * LR + kk * 16 + tig * 2;
      *reinterpret_cast<uint32_t*>(s0) = sa[kk][0];
      *reinterpret_cast<uint32_t*>(s0 + 8 * LR) = sa[kk][1];
      *reinterpret_cast<uint32_t*>(s0 + 8) = sa[kk][2];
      *reinterpret_cast<uint32_t*>(s0 + 8 * LR + 8) = sa[kk][3];
    }
    for (int e = tid; e < ne; e += nthreads) {  // dweights: the entry's G heads, in head order
      float dw = 0.0f;
      for (int g = 0; g < G; ++g) {
        float dot = 0.0f;
        for (int w2 = 0; w2 < NW; ++w2) dot += dotp[w2 * R + e * G + g];
        dw += dot;
      }
      a.dweights[a.flat[e0 + e]] = dw;
    }

    // dV_w += (wP)^T dO, dK_w += dS^T Q. B (k = query row, n = d) from row-major dO / Q with .trans: matrices
    // (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15) -> n-tiles 2q, 2q + 1.
#pragma unroll
    for (int kk = 0; kk < R / 16; ++kk)
#pragma unroll
      for (int q = 0; q < D / 16; ++q) {
        const int brow = kk * 16 + lrow + lmid * 8, bcol = q * 16 + lhi * 8;
        uint32_t bo[4], bq[4];
        ldmatrix_x4_trans(bo, dOs + brow * LD + bcol);
        ldmatrix_x4_trans(bq, Qs + brow * LD + bcol);
        mma_bf16_16816(acc_dv[2 * q], pa[kk], bo[0], bo[1]);
        mma_bf16_16816(acc_dv[2 * q + 1], pa[kk], bo[2], bo[3]);
        mma_bf16_16816(acc_dk[2 * q], sa[kk], bq[0], bq[1]);
        mma_bf16_16816(acc_dk[2 * q + 1], sa[kk], bq[2], bq[3]);
      }
    __syncthreads();  // Q, dO are free for the next tile; dS^T is complete
    if (tile + 1 < tile1) stage(tile + 1);

    // dQ = dS K for query rows [16 mt, 16 mt + 16): A = dS from dS^T with .trans (matrices (m 0-7, k 0-7),
    // (m 8-15, k 0-7), (m 0-7, k 8-15), (m 8-15, k 8-15)); B = K (k = key, n = d) like dO above.
    for (int mt = warp; mt < R / 16 && mt * 16 < m; mt += NW) {
#pragma unroll
      for (int pass = 0; pass < D / DQC; ++pass) {
        float acc[DQC / 8][4];
#pragma unroll
        for (int j = 0; j < DQC / 8; ++j)
#pragma unroll
          for (int u = 0; u < 4; ++u) acc[j][u] = 0.0f;
        for (int ks = 0; ks < NW; ++ks) {
          uint32_t as[4];
          ldmatrix_x4_trans(as, dST + (ks * 16 + lrow + lhi * 8) * LR + mt * 16 + lmid * 8);
#pragma unroll
          for (int q = 0; q < DQC / 16; ++q) {
            uint32_t bk[4];
            ldmatrix_x4_trans(bk, Ks + (ks * 16 + lrow + lmid * 8) * LD + pass * DQC + q * 16 + lhi * 8);
            mma_bf16_16816(acc[2 * q], as, bk[0], bk[1]);
            mma_bf16_16816(acc[2 * q + 1], as, bk[2], bk[3]);
          }
        }
        // Row `row` of the tile is entry e0 + row / G, head row % G: scratch row e0 * G + row.
        const int row = mt * 16 + grp;
        bf16* dst = a.dq_part + (int64_t(e0) * G + row) * D + pass * DQC + tig * 2;
#pragma unroll
        for (int j = 0; j < DQC / 8; ++j) {
          if (row < m) *reinterpret_cast<uint32_t*>(dst + j * 8) = pack_bf16x2(acc[j][0], acc[j][1]);
          if (row + 8 < m) *reinterpret_cast<uint32_t*>(dst + 8 * D + j * 8) = pack_bf16x2(acc[j][2], acc[j][3]);
        }
      }
    }
  }

  // dK, dV of keys key0 + grp (+ 8), columns 8j + 2 tig (+ 1).
  const int key = key0 + grp;
  if (nsplit == 1) {
    bf16* pk = a.dk + chunk_off + int64_t(key) * d.H * D + tig * 2;
    bf16* pv = a.dv + chunk_off + int64_t(key) * d.H * D + tig * 2;
    const int64_t down = 8 * d.H * D;
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      *reinterpret_cast<uint32_t*>(pk + j * 8) = pack_bf16x2(acc_dk[j][0], acc_dk[j][1]);
      *reinterpret_cast<uint32_t*>(pk + down + j * 8) = pack_bf16x2(acc_dk[j][2], acc_dk[j][3]);
      *reinterpret_cast<uint32_t*>(pv + j * 8) = pack_bf16x2(acc_dv[j][0], acc_dv[j][1]);
      *reinterpret_cast<uint32_t*>(pv + down + j * 8) = pack_bf16x2(acc_dv[j][2], acc_dv[j][3]);
    }
  } else {
    const int64_t slot = part_base(e_begin, item, per_block, a.part_mul, a.part_add) + split;
    float* pk = a.dkv_part + slot * 2 * S * D + key * D + tig * 2;
    float* pv = pk + S * D;
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      *reinterpret_cast<float2*>(pk + j * 8) = make_float2(acc_dk[j][0], acc_dk[j][1]);
      *reinterpret_cast<float2*>(pk + 8 * D + j * 8) = make_float2(acc_dk[j][2], acc_dk[j][3]);
      *reinterpret_cast<float2*>(pv + j * 8) = make_float2(acc_dv[j][0], acc_dv[j][1]);
      *reinterpret_cast<float2*>(pv + 8 * D + j * 8) = make_float2(acc_dv[j][2], acc_dv[j][3]);
    }
  }
}

// Per item (blockIdx.x) and range of S * D elements: zeros when no token chose the chunk, the sum of the split
// partials in split order for a split item, nothing for an unsplit item (its block wrote dK/dV).
__global__ void bwd_mma_finish_kernel(const float* __restrict dkv_part, const int32_t* __restrict begin,
                                      int per_block, int part_mul, int part_add, Dims d, __nv_bfloat16* dk,
                                      __nv_bfloat16* dv) {
  const int64_t item = blockIdx.x, sd = d.S * d.D;
  const int n = begin[item + 1] - begin[item], ns = (n + per_block - 1) / per_block;
  const bool empty = n == 0;
  if (!empty && ns == 1) return;
  const int64_t c = item % d.C, r = (item / d.C) % d.H, b = item / (d.C * d.H);
  const int64_t chunk_off = ((b * d.C + c) * d.S * d.H + r) * d.D;
  for (int64_t x = int64_t(blockIdx.y) * blockDim.x + threadIdx.x; x < sd; x += int64_t(gridDim.y) * blockDim.x) {
    float sk = 0.0f, sv = 0.0f;
    if (!empty) {
      const float* p = dkv_part + part_base(begin[item], item, per_block, part_mul, part_add) * 2 * sd + x;
#pragma unroll 8
      for (int s = 0; s < ns; ++s) {
        sk += p[2 * s * sd];
        sv += p[(2 * s + 1) * sd];
      }
    }
    const int64_t o = chunk_off + (x / d.D) * d.H * d.D + x % d.D;
    dk[o] = __float2bfloat16(sk);
    dv[o] = __float2bfloat16(sv);
  }
}

template <int D>
void launch_bwd_mma(const MmaBwdArgs& a, int64_t blocks) {
  const size_t smem = mma_bwd_smem(D, a.d.S);
  HSA_CUDA_CHECK(cudaFuncSetAttribute(hsa_bwd_mma_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  hsa_bwd_mma_kernel<D><<<unsigned(blocks), unsigned(a.d.S / 16 * 32), smem, stream()>>>(a);
  check_launch("hsa_bwd_mma_kernel");
}

}  // namespace

bool mma_bwd_supported(const Dims& d) {
  return (d.D == 16 || d.D == 32 || d.D == 64 || d.D == 128) && d.S % 16 == 0 && d.S >= 16 && d.S <= 64 &&
         d.rows == kMmaRows && d.ept >= 1;
}

// The bf16 fast path (hsa_bwd_mma_kernel): plans the splits on the device (the grid and the partial scratch are
// host-known upper bounds, nothing waits), runs the kernel and the finishing sum. rt.items > 0.
void backward_mma(const __nv_bfloat16* dout, const __nv_bfloat16* q, const __nv_bfloat16* mem_k,
                  const __nv_bfloat16* mem_v, const float* weights, const float* lse, const Dims& d,
                  const Routing& rt, __nv_bfloat16* dq_part, __nv_bfloat16* dmem_k, __nv_bfloat16* dmem_v,
                  float* dweights) {
  MmaBwdArgs a{};
  a.q = q, a.k = mem_k, a.v = mem_v, a.dout = dout, a.flat = rt.flat, a.begin = rt.begin, a.weights = weights;
  a.lse = lse, a.dq_part = dq_part, a.dk = dmem_k, a.dv = dmem_v, a.dweights = dweights, a.d = d;
  a.scale_log2 = d.scale * kLog2e;
  // 2048 query rows per block: the chunk's K/V load is amortised, a popular chunk still spreads over many SMs.
  a.tiles_per_block = std::max(1, 2048 / d.rows);
  const int64_t per_block = int64_t(d.ept) * a.tiles_per_block;
  const SplitPlan plan = plan_splits(rt, 1, per_block);
  a.block_item = plan.block_item;
  // f32 dK/dV partials (2 S D floats each) of split items, bounded on the host by the smaller of
  //   blocks = floor(slots / P) + items (slot = block number: part_base (1, 1)) and
  //   floor(2 slots / P) (an item of n > P entries has ceil(n / P) <= floor(2 n / P) splits: part_base (2, 0)).
  // Benchmark shape (bf16, G = 16, D = 128, S = 64, K = 8: P = 128 entries, 64 KiB per partial): at L = 64K
  // min(4096 + 1024, 8192) = 5120 partials = 320 MiB; at L = 1M min(65536 + 16384, 131072) = 81920 = 5 GiB, next
  // to the 32 GiB of the per-entry dq scratch. A workload with about P entries per chunk (causal top-8 in that
  // shape has ~512) uses nearly all of it.
  const int64_t by_block = plan.blocks, by_entries = 2 * rt.slots / per_block;
  const bool use_entries = by_entries <= by_block;
  a.part_mul = use_entries ? 2 : 1;
  a.part_add = use_entries ? 0 : 1;
  const int64_t parts = std::max<int64_t>(1, use_entries ? by_entries : by_block);
  DeviceBuffer<std::byte> dkv(int64_t(size_t(parts) * 2 * d.S * d.D * sizeof(float)));
  a.dkv_part = dkv.as<float>();
  if (plan.blocks > 0) {
    switch (d.D) {
      case 16: launch_bwd_mma<16>(a, plan.blocks); break;
      case 32: launch_bwd_mma<32>(a, plan.blocks); break;
      case 64: launch_bwd_mma<64>(a, plan.blocks); break;
      default: launch_bwd_mma<128>(a, plan.blocks); break;
    }
  }
  const unsigned ranges = unsigned(ceil_div(d.S * d.D, 256));
  bwd_mma_finish_kernel<<<dim3(unsigned(rt.items), ranges), 256, 0, stream()>>>(
      dkv.as<float>(), rt.begin, int(per_block), a.part_mul, a.part_add, d, dmem_k, dmem_v);
  check_launch("bwd_mma_finish_kernel");
}

}  // namespace hsa::cuda::hsa_attn

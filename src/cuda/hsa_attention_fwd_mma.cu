// bf16 chunk-attention forward in registers (hsa_fwd_mma_kernel); see hsa_attention_kernels.cuh for the other paths.
#include "cuda/hsa_attention_kernels.cuh"
#include "cuda/mma_sync.cuh"

#include <cmath>

namespace hsa::cuda::hsa_attn {

namespace {

// ---- bf16 forward in registers (FlashAttention-2 style): mma.sync m16n8k16 + ldmatrix ----
// Why two forward kernels: hsa_fwd_kernel (hsa_attention_fwd.cu) is generic in T and keeps f32 on CUDA cores (full
// f32 precision for the 1e-5 parity); it also remains the bf16 fallback for any shape the register kernel here
// does not take (mma_fwd_fits). For bf16 the register kernel replaces its block-wide GEMMs through shared memory and
// its many __syncthreads: every warp owns 16 query rows and keeps scores, probabilities and outputs in registers.
//
// Rows of an item: row R of item (b, r, c) is entry begin[item] + R / G, head g = R % G, so its part row is
// begin[item] * G + R and a 16-row tile of rows is 16 contiguous part rows. Every row is independent (softmax,
// lse and weight are per row), so a tile may hold several entries (G < 16), one entry's 16-head slice (G >= 16)
// or straddle entries (G = 3, 6, ...): any G works.
//
// Fragment layouts: cuda/mma_sync.cuh. Two C tiles n8 (keys 16j..16j+15) of Q K^T are the A fragment of k-step j
// of P V: no shuffles.
constexpr int kMmaWarps = 8, kMmaThreads = kMmaWarps * 32, kMmaMaxS = 64;

struct MmaFwdArgs {
  const __nv_bfloat16 *q, *k, *v;
  const int32_t *flat, *begin;
  const int32_t* block_item;  // the split plan: unit = G query rows per entry, per_block = 16 * tiles_per_block
  const float* weights;
  __nv_bfloat16* part;  // [entries, G, D]
  float* lse;
  Dims d;
  int tiles_per_block;  // 16-row tiles
};

// Shared memory: K and V [S, D + 8] and per warp two Q buffers [16, D + 8] (the current tile and the prefetched
// next one; the current one stages the bf16 outputs for coalesced stores). Rows of D + 8 elements are an odd
// number of 16-byte units apart, so the 8 row addresses of every ldmatrix phase hit distinct banks.
inline size_t mma_fwd_smem(int64_t S, int64_t D) { return size_t(2 * S + 2 * kMmaWarps * 16) * (D + 8) * 2; }

// Block = (item = (b, r, c), split), from the split plan: 16-row tiles [split * tiles_per_block, ...) of the item's
// rows, taken by the warps round-robin with no block barrier after the K/V load.
template <int D>
__global__ void __launch_bounds__(kMmaThreads, D <= 128 ? 2 : 1) hsa_fwd_mma_kernel(MmaFwdArgs a) {
  using bf16 = __nv_bfloat16;
  constexpr int LD = D + 8, VPR = D / 8, KS = D / 16;  // padded row, 16-byte vectors per row, k-steps of Q K^T
  extern __shared__ __align__(128) unsigned char smem[];
  const Dims& d = a.d;
  const int S = int(d.S);
  const int64_t G = d.G, item = a.block_item[blockIdx.x];
  const int e_begin = a.begin[item], e_end = a.begin[item + 1];
  const int64_t nrows = int64_t(e_end - e_begin) * G;
  const int tiles = int((nrows + 15) / 16);
  const int64_t split = int64_t(blockIdx.x) - plan_first_block(e_begin, item, G, 16 * a.tiles_per_block);
  if (split * a.tiles_per_block >= tiles) return;  // past the item's last split
  const int tile0 = int(split) * a.tiles_per_block, tile1 = min(tiles, tile0 + a.tiles_per_block);
  const int64_t c = item % d.C, r = (item / d.C) % d.H, b = item / (d.C * d.H);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane / 4, tig = lane % 4;
  // Per-row index math in 32 bits (routing checked that every flat index and row count fits): 64-bit division
  // is a long software sequence, and it ran several times per row of every tile.
  const int Gi = int(G), HK = int(d.H * d.K), Ki = int(d.K), Li = int(d.L);
  const float scale_log2 = d.scale * kLog2e;  // softmax in the log2 domain: one ex2 per score
  bf16* Ks = reinterpret_cast<bf16*>(smem);
  bf16* Vs = Ks + S * LD;
  bf16* Qw = Vs + S * LD + warp * 2 * 16 * LD;  // this warp's two [16, LD] buffers

  const int64_t chunk_off = ((b * d.C + c) * d.S * d.H + r) * D, kv_stride = d.H * D;
  for (int idx = threadIdx.x; idx < S * VPR; idx += kMmaThreads) {
    const int j = idx / VPR, x = (idx % VPR) * 8;
    cp_async_16(Ks + j * LD + x, a.k + chunk_off + j * kv_stride + x);
    cp_async_16(Vs + j * LD + x, a.v + chunk_off + j * kv_stride + x);
  }
  // Q rows of tile `tile` into dst [16, LD] (cp.async; rows past the item's end are zeroed). Warp-uniform.
  auto load_q = [&](int tile, bf16* dst) {
    const int R = tile * 16 + (lane & 15);  // lanes l and l + 16 resolve row l
    int64_t src = -1;
    if (R < nrows) {
      const int f = a.flat[e_begin + R / Gi], t = (f / HK) % Li;
      src = ((b * d.L + t) * d.HQ + r * G + R % Gi) * D;
    }
#pragma unroll
    for (int it = 0; it < 16 * VPR / 32; ++it) {  // 16 * VPR = 2 D: a multiple of 32
      const int idx = lane + 32 * it, row = idx / VPR, x = (idx % VPR) * 8;
      const int64_t s = __shfl_sync(0xffffffffu, src, row);
      bf16* p = dst + row * LD + x;
      if (s >= 0)
        cp_async_16(p, a.q + s + x);
      else
        *reinterpret_cast<uint4*>(p) = make_uint4(0, 0, 0, 0);
    }
  };
  int tile = tile0 + warp;
  if (tile < tile1) load_q(tile, Qw);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();  // K, V (and each warp's first Q tile) in place: the block's only barrier
  if (tile >= tile1) return;

  // Lane addresses of the ldmatrix row each lane feeds (bytes, shared window).
  const uint32_t k_lane = smem_addr(Ks + ((lane / 16) * 8 + (lane % 8)) * LD + ((lane / 8) % 2) * 8);
  const uint32_t v_lane = smem_addr(Vs + (((lane / 8) % 2) * 8 + (lane % 8)) * LD + (lane / 16) * 8);
  const int ns16 = S / 16;
  for (int buf = 0; tile < tile1; tile += kMmaWarps, buf ^= 1) {
    bf16* Q = Qw + buf * 16 * LD;
    if (tile + kMmaWarps < tile1) load_q(tile + kMmaWarps, Qw + (buf ^ 1) * 16 * LD);
    cp_async_commit();  // possibly empty: keeps one group per iteration
    cp_async_wait<1>();  // this tile's Q (committed one iteration earlier) has landed
    __syncwarp();

    // S = Q K^T: [16, S] in n8 tiles of keys.
    float sc[kMmaMaxS / 8][4];
#pragma unroll
    for (int n = 0; n < kMmaMaxS / 8; ++n) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
    const uint32_t q_lane = smem_addr(Q + (lane % 16) * LD + (lane / 16) * 8);
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      uint32_t qa[4];
      ldmatrix_x4(qa, q_lane + ks * 32);
#pragma unroll
      for (int p = 0; p < kMmaMaxS / 16; ++p) {
        if (p >= ns16) break;
        uint32_t kb[4];  // keys 16p..16p+7 d lo, d hi; keys 16p+8.. d lo, d hi
        ldmatrix_x4(kb, k_lane + (p * 16 * LD + ks * 16) * 2);
        mma_bf16_16816(sc[2 * p], qa, kb[0], kb[1]);
        mma_bf16_16816(sc[2 * p + 1], qa, kb[2], kb[3]);
      }
    }
    // Softmax per row in the log2 domain (scores times scale * log2 e; lse converted back to natural log): this
    // lane holds rows gid (h = 0) and gid + 8 (h = 1); a row's S values live in the 4 lanes of its quad.
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kMmaMaxS / 8; ++n) {
      if (n >= 2 * ns16) break;
#pragma unroll
      for (int u = 0; u < 4; ++u) sc[n][u] *= scale_log2;
      mx[0] = fmaxf(mx[0], fmaxf(sc[n][0], sc[n][1]));
      mx[1] = fmaxf(mx[1], fmaxf(sc[n][2], sc[n][3]));
    }
    float sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
    }
#pragma unroll
    for (int n = 0; n < kMmaMaxS / 8; ++n) {
      if (n >= 2 * ns16) break;
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        sc[n][u] = exp2f(sc[n][u] - mx[u / 2]);
        sum[u / 2] += sc[n][u];
      }
    }
    float factor[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], 1);
      sum[h] += __shfl_xor_sync(0xffffffffu, sum[h], 2);
      const int R = tile * 16 + gid + 8 * h;
      factor[h] = 0.0f;  // rows past the item's end: computed on zeros, never stored
      if (R < nrows) {
        const int f = a.flat[e_begin + R / Gi], g = R % Gi, i = f % Ki, t = (f / HK) % Li;
        // The retrieval weight folds into the normalisation: P V is then w_i * o_i.
        factor[h] = a.weights[f] / sum[h];
        if (tig == 0) a.lse[((b * d.L + t) * d.HQ + r * G + g) * d.K + i] = (mx[h] + log2f(sum[h])) * kLn2;
      }
    }
    // P (bf16, weighted) as the A fragments of P V, k-step j = keys 16j..16j+15 = C tiles 2j, 2j + 1.
    uint32_t pa[kMmaMaxS / 16][4];
#pragma unroll
    for (int j = 0; j < kMmaMaxS / 16; ++j) {
      if (j >= ns16) break;
      pa[j][0] = pack_bf16x2(sc[2 * j][0] * factor[0], sc[2 * j][1] * factor[0]);
      pa[j][1] = pack_bf16x2(sc[2 * j][2] * factor[1], sc[2 * j][3] * factor[1]);
      pa[j][2] = pack_bf16x2(sc[2 * j + 1][0] * factor[0], sc[2 * j + 1][1] * factor[0]);
      pa[j][3] = pack_bf16x2(sc[2 * j + 1][2] * factor[1], sc[2 * j + 1][3] * factor[1]);
    }
    // O = (w P) V: [16, D] in n8 tiles of d.
    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
#pragma unroll
    for (int j = 0; j < kMmaMaxS / 16; ++j) {
      if (j >= ns16) break;
#pragma unroll
      for (int p = 0; p < D / 16; ++p) {
        uint32_t vb[4];  // keys 16j..16j+7, 16j+8.. of d 16p..16p+7; the same of d 16p+8..
        ldmatrix_x4_trans(vb, v_lane + (j * 16 * LD + p * 16) * 2);
        mma_bf16_16816(o[2 * p], pa[j], vb[0], vb[1]);
        mma_bf16_16816(o[2 * p + 1], pa[j], vb[2], vb[3]);
      }
    }
    // Outputs through the (now dead) Q buffer, then 16-byte stores of the tile's contiguous part rows.
    __syncwarp();
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      *reinterpret_cast<uint32_t*>(Q + gid * LD + n * 8 + 2 * tig) = pack_bf16x2(o[n][0], o[n][1]);
      *reinterpret_cast<uint32_t*>(Q + (gid + 8) * LD + n * 8 + 2 * tig) = pack_bf16x2(o[n][2], o[n][3]);
    }
    __syncwarp();
    const int64_t left = nrows - int64_t(tile) * 16;
    const int valid = left < 16 ? int(left) : 16;
    bf16* dst = a.part + (int64_t(e_begin) * G + int64_t(tile) * 16) * D;
    for (int idx = lane; idx < valid * VPR; idx += 32) {
      const int row = idx / VPR, x = (idx % VPR) * 8;
      *reinterpret_cast<uint4*>(dst + row * D + x) = *reinterpret_cast<const uint4*>(Q + row * LD + x);
    }
    __syncwarp();  // the buffer is the next prefetch's target
  }
}

template <int D>
void launch_fwd_mma(const MmaFwdArgs& a, dim3 grid) {
  const size_t smem = mma_fwd_smem(a.d.S, D);
  HSA_CUDA_CHECK(cudaFuncSetAttribute(hsa_fwd_mma_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  hsa_fwd_mma_kernel<D><<<grid, kMmaThreads, smem, stream()>>>(a);
  check_launch("hsa_fwd_mma_kernel");
}

// D is a template parameter of the register kernel (it sizes the output accumulators): one instance per D that
// hsa_attention_check_supported allows.
void launch_fwd_mma_any_d(const MmaFwdArgs& a, dim3 grid) {
  switch (a.d.D) {
    case 16: return launch_fwd_mma<16>(a, grid);
    case 32: return launch_fwd_mma<32>(a, grid);
    case 48: return launch_fwd_mma<48>(a, grid);
    case 64: return launch_fwd_mma<64>(a, grid);
    case 80: return launch_fwd_mma<80>(a, grid);
    case 96: return launch_fwd_mma<96>(a, grid);
    case 112: return launch_fwd_mma<112>(a, grid);
    case 128: return launch_fwd_mma<128>(a, grid);
    case 144: return launch_fwd_mma<144>(a, grid);
    case 160: return launch_fwd_mma<160>(a, grid);
    case 176: return launch_fwd_mma<176>(a, grid);
    case 192: return launch_fwd_mma<192>(a, grid);
    case 208: return launch_fwd_mma<208>(a, grid);
    case 224: return launch_fwd_mma<224>(a, grid);
    case 240: return launch_fwd_mma<240>(a, grid);
    case 256: return launch_fwd_mma<256>(a, grid);
    default: HSA_CHECK(false, "hsa_fwd_mma_kernel: no instance for D = {}", a.d.D);
  }
}

}  // namespace

// Whether the bf16 register kernel takes these dims (else the bf16 forward runs hsa_fwd_kernel).
bool mma_fwd_fits(const Dims& d) {
  return d.D % 16 == 0 && d.D >= 16 && d.D <= 256 && d.S % 16 == 0 && d.S >= 16 && d.S <= kMmaMaxS &&
         int64_t(mma_fwd_smem(d.S, d.D)) <= max_smem_optin();
}

void forward_mma(const __nv_bfloat16* q, const __nv_bfloat16* mem_k, const __nv_bfloat16* mem_v,
                 const float* weights, const Dims& d, const Routing& rt, __nv_bfloat16* part, float* lse) {
  MmaFwdArgs m{q, mem_k, mem_v, rt.flat, rt.begin, nullptr, weights, part, lse, d, 512 / 16};
  const SplitPlan plan = plan_splits(rt, d.G, 16 * m.tiles_per_block);
  m.block_item = plan.block_item;
  if (plan.blocks > 0) launch_fwd_mma_any_d(m, dim3(unsigned(plan.blocks)));
}

}  // namespace hsa::cuda::hsa_attn

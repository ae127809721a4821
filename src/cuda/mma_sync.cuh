// Warp-level tensor-core building blocks in inline PTX (sm_80+): mma.sync m16n8k16 (bf16 in, f32 accumulate),
// ldmatrix and cp.async, and the warp-tile products, row copies and cp.async pipeline that the register attention
// kernels share. Not a public header.
//
// Fragment layouts (PTX ISA, "mma.m16n8k16" for .bf16), lane = 4 * group + tig (group = lane / 4, tig = lane % 4):
//   A 16x16 (row): 4 regs of 2 bf16: a[0] = (row group, cols 2tig, 2tig+1), a[1] = (row group+8, same cols),
//                  a[2] = (row group, cols 2tig+8, +9), a[3] = (row group+8, cols 2tig+8, +9).
//   B 16x8 (col):  2 regs: b[0] = (k rows 2tig, 2tig+1, col group), b[1] = (k rows 2tig+8, +9, col group).
//   C 16x8 f32:    c[0], c[1] = (row group, cols 2tig, 2tig+1), c[2], c[3] = (row group+8, same cols).
// So the C tiles of two neighbouring n-tiles (cols 0-7, 8-15), packed to bf16 pairs, are the A fragment of the
// 16x16 block they form: {pack(c0[0], c0[1]), pack(c0[2], c0[3]), pack(c1[0], c1[1]), pack(c1[2], c1[3])}.
// ldmatrix .m8n8: lanes 8i..8i+7 give the 8 row addresses (16 bytes each) of matrix i; lane l receives register i
// = (row l / 4, cols 2(l % 4), +1) of matrix i, or with .trans (rows 2(l % 4), +1, col l / 4).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

namespace hsa::cuda::detail {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Each ldmatrix / cp.async takes a shared-memory address (smem_addr; kernels that step through a tile add byte
// offsets to one per-lane base) or a generic pointer into shared memory.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) { ldmatrix_x4(r, smem_addr(p)); }
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  ldmatrix_x4_trans(r, smem_addr(p));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(p))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(p))
               : "memory");
}

// d += A B (16x8x16, bf16 inputs, f32 accumulation).
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as a bf16 pair: lo in the low half (the lower column / address).
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// 16-byte asynchronous global -> shared copy (bypasses L1).
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_16(void* dst, const void* src) { cp_async_16(smem_addr(dst), src); }
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most N committed groups of this thread are pending.
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
// 4-byte asynchronous copy (through L1: the 16-byte form needs 16-byte aligned sources).
__device__ __forceinline__ void cp_async_4(void* dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_addr(dst)), "l"(src) : "memory");
}

// ---- warp tiles: 16 rows of A against row-major bf16 tiles in shared memory ----
// Tiles have LD elements per row; LD = D + 8 makes rows an odd number of 16-byte units apart, so the 8 row
// addresses of every ldmatrix phase hit distinct banks. Products accumulate in f32 C fragments c[N / 8][4] (n8
// tiles, layout above). The loops run over k-steps outermost, so an A operand read from shared memory one k-step at
// a time keeps only 4 registers live.

// A fragment of k-step ks of a row-major [16][K] tile at shared address `tile` (row stride LD elements).
template <int LD>
__device__ __forceinline__ void ldmatrix_a(uint32_t (&a)[4], uint32_t tile, int ks) {
  const int lane = threadIdx.x % 32;
  ldmatrix_x4(a, tile + ((lane % 16) * LD + (lane / 16) * 8 + ks * 16) * 2);
}

// A warp's 16 rows of a row-major [16][K] tile in shared memory (row stride LD) as mma_abt's A operand: the
// fragments are loaded into registers once (REGS), or read from shared memory at each use, which saves 2 K
// registers per lane for kernels that would otherwise spill.
template <int K, int LD, bool REGS>
struct RowsA {
  uint32_t f[REGS ? K / 16 : 1][4];
  uint32_t tile;
  __device__ __forceinline__ void load(uint32_t shared_tile) {
    tile = shared_tile;
    if constexpr (REGS) {
#pragma unroll
      for (int ks = 0; ks < K / 16; ++ks) ldmatrix_a<LD>(f[ks], tile, ks);
    }
  }
  __device__ __forceinline__ void operator()(int ks, uint32_t (&a)[4]) const {
    if constexpr (REGS) {
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = f[ks][i];
    } else {
      ldmatrix_a<LD>(a, tile, ks);
    }
  }
};

// C[16][N] += A[16][K] B^T with B row-major [N][K] at shared address b: a(ks, frag) fills the A fragment of
// k-step ks (RowsA). Attention scores: A = query rows, B = key rows.
template <int N, int K, int LD, class AFrag>
__device__ __forceinline__ void mma_abt(float (&c)[N / 8][4], AFrag&& a, uint32_t b) {
  static_assert(N % 16 == 0 && K % 16 == 0, "whole 16 x 16 blocks");
  const int lane = threadIdx.x % 32;
  // ldmatrix matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15): b0, b1 of n8 tiles 2p, 2p+1.
  const uint32_t lane_b = b + (((lane / 16) * 8 + lane % 8) * LD + ((lane / 8) % 2) * 8) * 2;
#pragma unroll
  for (int ks = 0; ks < K / 16; ++ks) {
    uint32_t af[4];
    a(ks, af);
#pragma unroll
    for (int p = 0; p < N / 16; ++p) {
      uint32_t bf[4];
      ldmatrix_x4(bf, lane_b + (p * 16 * LD + ks * 16) * 2);
      mma_bf16_16816(c[2 * p], af, bf[0], bf[1]);
      mma_bf16_16816(c[2 * p + 1], af, bf[2], bf[3]);
    }
  }
}

// As mma_abt for MT warp tiles of 16 rows at once, their A fragments in registers (a[m] = RowsA fragments of
// rows 16m..16m+15): each B fragment loaded serves MT products, MT times fewer ldmatrix per FLOP.
template <int MT, int N, int K, int LD>
__device__ __forceinline__ void mma_abt_tiles(float (&c)[MT][N / 8][4], const uint32_t (&a)[MT][K / 16][4],
                                              uint32_t b) {
  static_assert(N % 16 == 0 && K % 16 == 0, "whole 16 x 16 blocks");
  const int lane = threadIdx.x % 32;
  const uint32_t lane_b = b + (((lane / 16) * 8 + lane % 8) * LD + ((lane / 8) % 2) * 8) * 2;  // as in mma_abt
#pragma unroll
  for (int ks = 0; ks < K / 16; ++ks)
#pragma unroll
    for (int p = 0; p < N / 16; ++p) {
      uint32_t bf[4];
      ldmatrix_x4(bf, lane_b + (p * 16 * LD + ks * 16) * 2);
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        mma_bf16_16816(c[m][2 * p], a[m][ks], bf[0], bf[1]);
        mma_bf16_16816(c[m][2 * p + 1], a[m][ks], bf[2], bf[3]);
      }
    }
}

// C[16][N] += A[16][K] B with B row-major [K][N] at shared address b (ldmatrix .trans) and A as packed fragments
// (pack_a). Attention outputs: A = probabilities, B = value rows.
template <int K, int N, int LD>
__device__ __forceinline__ void mma_ab(float (&c)[N / 8][4], const uint32_t (&a)[K / 16][4], uint32_t b) {
  static_assert(N % 16 == 0 && K % 16 == 0, "whole 16 x 16 blocks");
  const int lane = threadIdx.x % 32;
  // ldmatrix matrices (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15): b0, b1 of n8 tiles 2p, 2p+1.
  const uint32_t lane_b = b + ((((lane / 8) % 2) * 8 + lane % 8) * LD + (lane / 16) * 8) * 2;
#pragma unroll
  for (int j = 0; j < K / 16; ++j)
#pragma unroll
    for (int p = 0; p < N / 16; ++p) {
      uint32_t bf[4];
      ldmatrix_x4_trans(bf, lane_b + (j * 16 * LD + p * 16) * 2);
      mma_bf16_16816(c[2 * p], a[j], bf[0], bf[1]);
      mma_bf16_16816(c[2 * p + 1], a[j], bf[2], bf[3]);
    }
}

// The C fragments of a [16][N] product as bf16 A fragments of k-steps 16j..16j+15 (no shuffles: see above).
template <int N>
__device__ __forceinline__ void pack_a(uint32_t (&a)[N / 16][4], const float (&c)[N / 8][4]) {
#pragma unroll
  for (int j = 0; j < N / 16; ++j) {
    a[j][0] = pack_bf16x2(c[2 * j][0], c[2 * j][1]);
    a[j][1] = pack_bf16x2(c[2 * j][2], c[2 * j][3]);
    a[j][2] = pack_bf16x2(c[2 * j + 1][0], c[2 * j + 1][1]);
    a[j][3] = pack_bf16x2(c[2 * j + 1][2], c[2 * j + 1][3]);
  }
}

// ROWS rows of D bf16 into dst [ROWS][LD], all THREADS threads of the block: offset(r) is the element offset of
// row r in src, or negative for a row of zeros. Rows shorter than D (cols < D, a multiple of 8) are zero padded.
// cp.async (commit is the caller's).
template <int ROWS, int D, int LD, int THREADS, class Offset>
__device__ __forceinline__ void cp_async_rows(__nv_bfloat16* dst, const __nv_bfloat16* src, Offset&& offset,
                                              int cols = D) {
  constexpr int VPR = D / 8, N = ROWS * VPR;
  static_assert(D % 8 == 0 && N % THREADS == 0, "whole 16-byte vectors, the same count per thread");
#pragma unroll
  for (int it = 0; it < N / THREADS; ++it) {
    const int idx = int(threadIdx.x) + it * THREADS, r = idx / VPR, x = (idx % VPR) * 8;
    const int64_t off = offset(r);
    __nv_bfloat16* p = dst + r * LD + x;
    if (off >= 0 && x < cols)
      cp_async_16(p, src + off + x);
    else
      *reinterpret_cast<uint4*>(p) = make_uint4(0, 0, 0, 0);
  }
}

// A warp's [16][N] f32 tile (C fragments), row gid scaled by f0 and row gid + 8 by f1, to bf16 rows in global
// memory through the warp's staging buffer stage [16][LD]: dst(r) is the address of row r, or null to skip it.
template <int N, int LD, class Dst>
__device__ __forceinline__ void store_rows(const float (&c)[N / 8][4], float f0, float f1, __nv_bfloat16* stage,
                                           Dst&& dst) {
  const int lane = threadIdx.x % 32, gid = lane / 4, tig = lane % 4;
  __syncwarp();
#pragma unroll
  for (int n = 0; n < N / 8; ++n) {
    *reinterpret_cast<uint32_t*>(stage + gid * LD + n * 8 + 2 * tig) = pack_bf16x2(c[n][0] * f0, c[n][1] * f0);
    *reinterpret_cast<uint32_t*>(stage + (gid + 8) * LD + n * 8 + 2 * tig) = pack_bf16x2(c[n][2] * f1, c[n][3] * f1);
  }
  __syncwarp();
  constexpr int VPR = N / 8;
  static_assert(16 * VPR % 32 == 0, "the same number of vectors per lane");
#pragma unroll
  for (int it = 0; it < 16 * VPR / 32; ++it) {
    const int idx = lane + 32 * it, r = idx / VPR, x = (idx % VPR) * 8;
    __nv_bfloat16* p = dst(r);
    if (p) *reinterpret_cast<uint4*>(p + x) = *reinterpret_cast<const uint4*>(stage + r * LD + x);
  }
  __syncwarp();
}

// Double-buffered cp.async pipeline over `tiles` tiles, called by the whole block after it committed its
// prologue copies (a group of its own). load(n, buf) issues the copies of tile n into buffer buf (0 or 1);
// ready() runs once the prologue has landed; body(n, buf) runs once tile n has landed, while tile n + 1 is in
// flight. Barriers before and after each body: buffers are reused two tiles later. Returns after a barrier.
template <class Load, class Ready, class Body>
__device__ __forceinline__ void pipeline(int tiles, Load&& load, Ready&& ready, Body&& body) {
  if (tiles > 0) load(0, 0);
  cp_async_commit();
  cp_async_wait<1>();
  __syncthreads();
  ready();
  for (int n = 0; n < tiles; ++n) {
    if (n + 1 < tiles) load(n + 1, (n + 1) & 1);
    cp_async_commit();  // possibly empty: one group per iteration
    cp_async_wait<1>();
    __syncthreads();
    body(n, n & 1);
    __syncthreads();
  }
  cp_async_wait<0>();
}

}  // namespace hsa::cuda::detail

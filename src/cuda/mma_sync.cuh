// Warp-level tensor-core building blocks in inline PTX (sm_80+): mma.sync m16n8k16 (bf16 in, f32 accumulate),
// ldmatrix and cp.async. Not a public header.
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

}  // namespace hsa::cuda::detail

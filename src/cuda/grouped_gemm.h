// Grouped GEMMs whose group sizes live in device memory, row-major like cuda::gemm: the GEMMs of all MoE experts
// over the rows routed to them, in one launch each, with no device->host copy (the host never learns how many
// rows an expert got). Queued on stream(); neither call waits for the device.
//   offsets: int32 device array [G + 1], non-decreasing; group g owns rows [offsets[g], offsets[g + 1]) of the
//   row-indexed operands (rows_g = offsets[g + 1] - offsets[g], may be 0).
// T = float: exact f32 math on CUDA cores (parity with the CPU to ~1e-6). T = bf16: tensor cores (mma.sync
// m16n8k16), f32 accumulation, bf16 out. beta = 0 never reads C (it may hold anything, NaN included).
// Any sizes and row strides; operands whose base, row stride (and group stride) are multiples of 16 bytes load
// through cp.async, the others through a per-element path. Design notes in grouped_gemm.cu.
// Device pointers. Without CUDA, src/cuda_stub/ defines these entry points to throw.
#pragma once
#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

// Row-grouped: for every group g and row r in [offsets[g], offsets[g + 1]):
//   C[r, 0:n] = A[r, 0:k] op(B_g) + beta * C[r, 0:n]
// A [*, k] (row stride lda), C [*, n] (row stride ldc); B_g = b + g * b_stride, stored [n, k] when trans_b (then
// op(B_g) = B_g^T), else [k, n]; row stride ldb. max_rows: a host-known bound on offsets[G] - offsets[0] that sizes
// the grid (rows past it are not computed). k = 0 writes beta * C on the groups' rows.
template <class T>
void grouped_gemm_rows(const int32_t* offsets, int64_t groups, int64_t max_rows, int64_t n, int64_t k, const T* a,
                       int64_t lda, const T* b, int64_t ldb, int64_t b_stride, bool trans_b, float beta, T* c,
                       int64_t ldc);

// K-grouped (weight gradients): for every group g, with the reduction over its rows,
//   C_g[0:m, 0:n] = sum_{r in [offsets[g], offsets[g + 1])} A[r, 0:m]^T B[r, 0:n] + beta * C_g
// A [*, m] (row stride lda), B [*, n] (row stride ldb); C_g = c + g * c_stride, [m, n] with row stride ldc. A group
// with no rows writes beta * C_g (zeros for beta = 0). splits: how many blocks share each group's reduction (f32
// partials summed in split order by a second kernel: the same bits run to run for a given splits), in
// [1, kGroupedGemmMaxSplits]; 0 picks it from the tile count and the GPU (the same choice on the same GPU).
constexpr int kGroupedGemmMaxSplits = 16;
template <class T>
void grouped_gemm_k(const int32_t* offsets, int64_t groups, int64_t m, int64_t n, const T* a, int64_t lda,
                    const T* b, int64_t ldb, float beta, T* c, int64_t ldc, int64_t c_stride, int splits = 0);

}  // namespace hsa::cuda

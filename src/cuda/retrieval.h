// CUDA HSA retrieval (docs/architecture.md §2.5 steps 1-3 and §2.6), the device half of ops/retrieval. Semantics (visibility, tie
// rule, slot order, weightings) exactly as in ops/retrieval.h; raw contiguous device pointers.
//   qr, dqr [B, L, H, dr] and landmarks, dlandmarks [B, C, H, dr] in f32 or bf16 (alike; computed in f32);
//   indices i32 [B, L, H, K]; weights, scores, dweights f32 [B, L, H, K].
// Forward, three kernels (none builds an L x C matrix; RetrievalKernel picks):
//   mma     bf16: per block 128 query rows of one head, scores on the tensor cores (mma.sync) against tiles of 64
//           landmarks streamed through shared memory (cp.async, double-buffered), a running top-K per row in the
//           stream (retrieval_mma.cu). With fewer row tiles than two per SM and >= 1024 visible chunks (a prefill
//           segment against a long memory) the chunks are split over blocks too and the partial lists merged.
//   gated   bf16, the mma kernel's scores (bit for bit) with blocks of 256 query rows and one exact gate per row: a
//           score below its row's K-th best costs one compare, and a warp inserts the rare ones that pass in one
//           batch per 64 landmarks (retrieval_gated.cu; docs/architecture.md §5.5).
//   split   at most kRetrievalSplitMaxRows query rows (decode, short prefill steps): blocks of 128 chunks each keep
//           their rows' top-K, then one warp per row merges them (retrieval_split.cu).
//   scalar  the first kernel: one thread per query row, f32 CUDA-core scores, 64-landmark tiles (the f32 path).
// Backward: per row the score gradients and dqr; dlandmarks through the chunk-major grouping (stable sort by chunk):
// blocks of 256 entries of a chunk, 8 warps of 32 consecutive entries each, then the warps and the blocks of a
// chunk added in order: deterministic, no atomics, and a chunk that every token chose is spread over many blocks.
// Without CUDA, src/cuda_stub/ defines these entry points to throw.
#pragma once
#include "cuda/hsa_support.h"
#include "kernel/shapes.h"

#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

// Throws (naming `op`) when the shapes are outside what the kernels support (dr and K bounded by shared memory).
void retrieval_check_supported(const char* op, DType dtype, const RetrievalDims& d);

// The forward kernels (see above). automatic: split for at most kRetrievalSplitMaxRows query rows, else mma where
// it applies (bf16, dr a multiple of 8 and at most 128, 16-byte aligned qr and landmarks, K small enough for its
// shared memory; the same for gated, see retrieval_tensor_core_kernel), else scalar. All give the same indices wherever the scores they compute order the chunks alike
// (equal scores on equal products: duplicated landmarks tie on every kernel, and the tie rule decides).
// The tensor-core kernel automatic uses is retrieval_tensor_core_kernel(): mma, or gated.
enum class RetrievalKernel { automatic, scalar, mma, split, gated };
inline constexpr int64_t kRetrievalSplitMaxRows = 16;
const char* retrieval_kernel_name(RetrievalKernel kernel);  // "automatic", "scalar", "mma", "split", "gated"
// The switch between the two tensor-core kernels. kRetrievalPreferGated picks the default: gated since it passed
// the GPU parity tests on an H200 and ran 2.4x faster than mma at 64K and 1M (docs/results.md); where gated does
// not apply but mma does (a K too large for gated's shared memory), automatic takes mma; the environment variable HSA_RETRIEVAL_KERNEL=gated or =mma
// overrides it for a whole run (read once), and =scalar makes automatic the scalar kernel everywhere (to compare
// whole runs with the first kernel); unset or "automatic": the default.
inline constexpr bool kRetrievalPreferGated = true;
RetrievalKernel retrieval_tensor_core_kernel();  // mma or gated, as the switch says
// What automatic runs for these inputs (as above; scalar where neither split nor the tensor-core kernel applies).
RetrievalKernel retrieval_kernel_for(DType dtype, const void* qr, const void* landmarks,
                                     const RetrievalDims& d);

// Throws (naming the kernel) when an explicitly requested kernel does not take these inputs.
void retrieval_forward(DType dtype, const void* qr, const void* landmarks, int32_t* indices, float* weights,
                       float* scores, const RetrievalDims& d, double scale,
                       RetrievalKernel kernel = RetrievalKernel::automatic);

// Queues the backward without waiting for the device. An index outside [-1, C) is skipped (as an empty slot) and
// the one at the highest flat position (the CPU backward's choice) goes to the deferred input-error record
// (cuda/runtime.h): it throws at the next cuda::synchronize(); the outputs are then unspecified. `routing`: the
// chunk routing of these same indices with C = d.chunks, kept from the chunk attention forward
// (cuda/hsa_attention.h), to skip the sort (bit-identical results; a bad index was reported when it was built, and
// is not again), or null to build one.
void retrieval_backward(DType dtype, const float* dweights, const void* qr, const void* landmarks,
                        const int32_t* indices, const float* weights, const float* scores, void* dqr,
                        void* dlandmarks, const RetrievalDims& d, double scale,
                        const detail::Routing* routing = nullptr);

}  // namespace hsa::cuda

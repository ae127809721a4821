// CUDA HSA retrieval (ARCHITECTURE 1.4 steps 1-3), the device half of ops/retrieval. Semantics (visibility, tie
// rule, slot order, weightings) exactly as in ops/retrieval.h; raw contiguous device pointers.
//   qr, dqr [B, L, H, dr] and landmarks, dlandmarks [B, C, H, dr] in f32 or bf16 (alike; computed in f32);
//   indices i32 [B, L, H, K]; weights, scores, dweights f32 [B, L, H, K].
// Forward: one thread per query row keeps a running top-K in shared memory while blocks of 64 landmarks stream
// through shared memory (scores in registers, never an L x C matrix). Backward: per row the score gradients and
// dqr; dlandmarks through the chunk-major grouping (stable sort by chunk): blocks of 256 entries of a chunk, 8 warps
// of 32 consecutive entries each, then the warps and the blocks of a chunk added in order: deterministic, no
// atomics, and a chunk that every token chose is spread over many blocks. Only compiled in CUDA builds.
#pragma once
#include "cpu/retrieval.h"

#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

// Throws (naming `op`) when the shapes are outside what the kernel supports (dr and K bounded by shared memory).
void retrieval_check_supported(const char* op, DType dtype, const cpu::RetrievalDims& d);

void retrieval_forward(DType dtype, const void* qr, const void* landmarks, int32_t* indices, float* weights,
                       float* scores, const cpu::RetrievalDims& d, double scale);

// Queues the backward without waiting for the device. An index outside [-1, C) is skipped (as an empty slot) and
// the one at the highest flat position (the CPU backward's choice) goes to the deferred input-error record
// (cuda/runtime.h): it throws at the next cuda::synchronize(); the outputs are then unspecified.
void retrieval_backward(DType dtype, const float* dweights, const void* qr, const void* landmarks,
                        const int32_t* indices, const float* weights, const float* scores, void* dqr,
                        void* dlandmarks, const cpu::RetrievalDims& d, double scale);

}  // namespace hsa::cuda

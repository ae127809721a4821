// The HSA branch of an HSA block (docs/architecture.md §2.5): each token scores the landmarks of the complete chunks,
// keeps its top-K, attends inside each chosen chunk and fuses the results with the chunk weights.
// Returns the branch (the caller adds it to the residual stream, or not: hsa_bypass_residual).
#pragma once
#include "model/chunk_memory.h"
#include "ops/hsa_attention.h"
#include "ops/retrieval.h"

namespace hsa {

struct HsaCache {
  Tensor x, xn, x_rstd, q_ret, q_raw, q_rstd, q, attn_flat;
  ops::RetrievalOut retrieval;
  ops::RetrievalParams retrieval_params;
  ops::HsaOut attn;
  Tensor mem_k, mem_v, landmarks;  // the memory views this layer read
  bool empty = true;               // no chunk existed: the branch was zero
  Tensor q_ret_raw, q_ret_rstd;    // the retrieval query before its norm (hsa_retrieval_norm)
  // The chunk attention's grouping of retrieval.indices by chunk (CUDA; empty on the CPU): both backwards reuse it,
  // so a training step sorts once per HSA layer. Clearing it only costs the backwards a sort each.
  ops::HsaRouting routing;
};

ops::RetrievalParams retrieval_params_for(const ModelConfig& config, int64_t pos0);

Tensor hsa_forward(const LayerContext& ctx, const Tensor& x, int64_t pos0, const ChunkMemory& memory, HsaCache* cache);
// Returns dx; adds this layer's gradients of the memory into `memory_grads`.
Tensor hsa_backward(const LayerContext& ctx, const HsaCache& cache, const Tensor& dy, TensorMap& grads,
                    MemoryGrads& memory_grads);

}  // namespace hsa

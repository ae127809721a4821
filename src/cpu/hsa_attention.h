// CPU HSA chunk-attention kernels (shapes as in ops/hsa_attention.h, all contiguous).
// Chunk-major: the (token, slot) pairs are grouped by the chunk they selected, so each work item
// (batch, KV head, chunk) reads its chunk's keys and values once and runs dense GEMMs over all the query
// heads that selected it, the way MoE groups tokens by expert. Per-slot results go to a scratch buffer
// and are reduced per token in a fixed order: no races, and results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace hsa::cpu {

struct HsaShape {
  int64_t B, L, HQ, H, D, C, S, K;
  double scale;
};

template <class T>
void hsa_attention_forward(const T* q, const T* mem_k, const T* mem_v, const int32_t* indices, const T* weights,
                           T* out, T* lse, const HsaShape& s);
template <class T>
void hsa_attention_backward(const T* dout, const T* q, const T* mem_k, const T* mem_v, const int32_t* indices,
                            const T* weights, const T* lse, T* dq, T* dmem_k, T* dmem_v, T* dweights,
                            const HsaShape& s);

}  // namespace hsa::cpu

// The chunk encoder (config chunk_encoder_layers > 0; docs/architecture.md): a few pre-norm bidirectional
// transformer blocks over each complete chunk, its S normalised token states followed by one learned [CLS] row.
// Attention stays inside the chunk (ops::block_attention) and sees the local positions 0..S through RoPE, so the
// encoder knows the order of a chunk's tokens while the memory it feeds stays NoPE across chunks. The FFN is the
// model's dense SwiGLU of intermediate_size. Parameters of block i live under memory.encoder.{i}. with the names
// of a model layer's attention and dense FFN (attn_norm, attn.{q,k,v,o}_proj, attn.{q,k}_norm with qk_norm,
// ffn_norm, ffn.{gate,up,down}_proj).
#pragma once
#include "model/ffn_layer.h"
#include "model/layer_context.h"
#include "model/qkv_projection.h"
#include "ops/block_attention.h"

#include <vector>

namespace hsa {

struct EncoderBlockCache {
  QkvCache qkv;
  Tensor q, k, v, attn_flat;
  ops::BlockAttentionOut attn;
  FfnCache ffn;
};

struct ChunkEncoderCache {
  std::vector<EncoderBlockCache> blocks;
};

// x [N, S+1, dm] (N chunks: tokens then [CLS]) -> the encoder's outputs, same shape. `memory` is the memory
// builder's context ("memory."). With `cache`, keeps what the backward needs.
Tensor chunk_encoder_forward(const LayerContext& memory, const Tensor& x, ChunkEncoderCache* cache);

// Gradient into x from dy (like x); adds the encoder's parameter gradients to `grads`.
Tensor chunk_encoder_backward(const LayerContext& memory, const ChunkEncoderCache& cache, const Tensor& dy,
                              TensorMap& grads);

}  // namespace hsa

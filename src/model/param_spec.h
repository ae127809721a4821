// The parameter layout of an HSA-UltraLong model: every tensor's name, shape and initialisation.
// dm = hidden_size, HQ = num_attention_heads, H = num_key_value_heads, D = head_dim, dr = retrieval_dim,
// F = intermediate_size, E = num_experts, Fe = moe_intermediate_size, NS = num_shared_experts, V = vocab_size.
//
//   embed.weight                         [V, dm]
//   layers.{i}.attn_norm.weight          [dm]
//   layers.{i}.attn.{q,o}_proj.weight    [HQ*D, dm], [dm, HQ*D]
//   layers.{i}.attn.{k,v}_proj.weight    [H*D, dm]
//   layers.{i}.attn.{q,k}_norm.weight    [D]               (qk_norm)
//   HSA layers:
//   layers.{i}.hsa_norm.weight           [dm]
//   layers.{i}.hsa.q_proj.weight         [HQ*D, dm]
//   layers.{i}.hsa.o_proj.weight         [dm, HQ*D]
//   layers.{i}.hsa.retrieval_proj.weight [dr, dm]
//   layers.{i}.hsa.q_norm.weight         [D]               (hsa_qk_norm)
//   layers.{i}.ffn_norm.weight           [dm]
//   dense: layers.{i}.ffn.{gate,up}_proj.weight [F, dm], layers.{i}.ffn.down_proj.weight [dm, F]
//   MoE:   layers.{i}.moe.router.weight [E, dm], moe.w_{gate,up} [E, Fe, dm], moe.w_down [E, dm, Fe],
//          moe.shared_{gate,up} [NS, Fe, dm], moe.shared_down [NS, dm, Fe]     (NS > 0)
//   memory builder (num_upper_groups > 0):
//   memory.norm.weight [dm], memory.{k,v}_proj.weight [H*D, dm], memory.landmark_proj.weight [dr, dm],
//   memory.k_norm.weight [D]                               (hsa_qk_norm)
//   final_norm.weight [dm]; lm_head.weight [V, dm] unless tie_word_embeddings
//   chunk encoder (chunk_encoder_layers > 0, with a memory builder), last:
//   memory.cls [dm], memory.lmk_norm.weight [dm], and per encoder block i:
//   memory.encoder.{i}.attn_norm.weight [dm], memory.encoder.{i}.attn.{q,k,v}_proj.weight [HQ*D, dm],
//   memory.encoder.{i}.attn.o_proj.weight [dm, HQ*D], memory.encoder.{i}.attn.{q,k}_norm.weight [D] (qk_norm),
//   memory.encoder.{i}.ffn_norm.weight [dm], memory.encoder.{i}.ffn.{gate,up}_proj.weight [F, dm],
//   memory.encoder.{i}.ffn.down_proj.weight [dm, F]
//   retrieval norm (hsa_retrieval_norm, with a memory builder), last:
//   layers.{i}.hsa.retrieval_norm.weight [dr/H] for every HSA layer i, memory.landmark_norm.weight [dr/H]
#pragma once
#include "model/config.h"

#include <hsa/tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hsa {

struct ParamSpec {
  std::string name;
  Shape shape;
  enum class Init { normal, ones, zeros } init = Init::normal;
  double stddev = 0.0;  // for Init::normal
};

// In a fixed order (the order init_parameters derives seeds from).
std::vector<ParamSpec> model_param_specs(const ModelConfig& cfg);

int64_t count_parameters(const std::vector<ParamSpec>& specs);
// Parameters one token touches: all of them except the routed experts it is not sent to
// (MoE layers count num_experts_per_tok routed experts plus the shared ones).
int64_t active_parameters_per_token(const ModelConfig& cfg);
// Bytes of state that grow with the context, per token: the chunk memory's mem_k and mem_v
// (2 * H * D values) plus one landmark of dr values per chunk_size tokens. 0 without HSA groups.
// (The SWA KV caches are bounded by the windows and are not included.)
double state_bytes_per_token(const ModelConfig& cfg, DType dtype);

// Fresh parameters, deterministic in `seed`: parameter k draws from hsa::randn with a seed mixed from
// (seed, k), so adding parameters at the end does not change earlier ones.
std::map<std::string, Tensor> init_parameters(const ModelConfig& cfg, uint64_t seed, DType dtype = DType::f32);

}  // namespace hsa

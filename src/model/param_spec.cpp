#include "model/param_spec.h"

#include <hsa/random.h>

#include <cmath>
#include <fmt/format.h>

namespace hsa {

std::vector<ParamSpec> model_param_specs(const ModelConfig& cfg) {
  const int64_t dm = cfg.hidden_size, HQ = cfg.num_attention_heads, H = cfg.num_key_value_heads, D = cfg.head_dim;
  const int64_t dr = cfg.retrieval_dim, F = cfg.intermediate_size, V = cfg.vocab_size;
  const int64_t E = cfg.num_experts, Fe = cfg.moe_intermediate_size, NS = cfg.num_shared_experts;
  const double std_in = cfg.initializer_range;
  // Output projections feed the residual stream once per layer and sub-block: scaled down so the
  // residual's variance does not grow with depth (GPT-2 style).
  const double std_out = cfg.initializer_range / std::sqrt(2.0 * static_cast<double>(cfg.num_layers()));

  std::vector<ParamSpec> specs;
  auto normal = [&](std::string name, Shape shape, double stddev) {
    specs.push_back({std::move(name), std::move(shape), ParamSpec::Init::normal, stddev});
  };
  auto ones = [&](std::string name, Shape shape) {
    specs.push_back({std::move(name), std::move(shape), ParamSpec::Init::ones, 0.0});
  };

  normal("embed.weight", {V, dm}, std_in);
  for (int64_t i = 0; i < cfg.num_layers(); ++i) {
    const std::string p = fmt::format("layers.{}.", i);
    ones(p + "attn_norm.weight", {dm});
    normal(p + "attn.q_proj.weight", {HQ * D, dm}, std_in);
    normal(p + "attn.k_proj.weight", {H * D, dm}, std_in);
    normal(p + "attn.v_proj.weight", {H * D, dm}, std_in);
    normal(p + "attn.o_proj.weight", {dm, HQ * D}, std_out);
    if (cfg.qk_norm) {
      ones(p + "attn.q_norm.weight", {D});
      ones(p + "attn.k_norm.weight", {D});
    }
    if (cfg.is_hsa_layer(i)) {
      ones(p + "hsa_norm.weight", {dm});
      normal(p + "hsa.q_proj.weight", {HQ * D, dm}, std_in);
      normal(p + "hsa.o_proj.weight", {dm, HQ * D}, std_out);
      normal(p + "hsa.retrieval_proj.weight", {dr, dm}, std_in);
      if (cfg.hsa_qk_norm) ones(p + "hsa.q_norm.weight", {D});
    }
    ones(p + "ffn_norm.weight", {dm});
    if (cfg.is_moe_layer(i)) {
      normal(p + "moe.router.weight", {E, dm}, std_in);
      normal(p + "moe.w_gate", {E, Fe, dm}, std_in);
      normal(p + "moe.w_up", {E, Fe, dm}, std_in);
      normal(p + "moe.w_down", {E, dm, Fe}, std_out);
      if (NS > 0) {
        normal(p + "moe.shared_gate", {NS, Fe, dm}, std_in);
        normal(p + "moe.shared_up", {NS, Fe, dm}, std_in);
        normal(p + "moe.shared_down", {NS, dm, Fe}, std_out);
      }
    } else {
      normal(p + "ffn.gate_proj.weight", {F, dm}, std_in);
      normal(p + "ffn.up_proj.weight", {F, dm}, std_in);
      normal(p + "ffn.down_proj.weight", {dm, F}, std_out);
    }
  }
  if (cfg.has_memory()) {
    ones("memory.norm.weight", {dm});
    normal("memory.k_proj.weight", {H * D, dm}, std_in);
    normal("memory.v_proj.weight", {H * D, dm}, std_in);
    normal("memory.landmark_proj.weight", {dr, dm}, std_in);
    if (cfg.hsa_qk_norm) ones("memory.k_norm.weight", {D});
  }
  ones("final_norm.weight", {dm});
  if (!cfg.tie_word_embeddings) normal("lm_head.weight", {V, dm}, std_in);
  // The chunk encoder comes last so that every other parameter starts as in the same model with mean pooling
  // (init seeds follow the order): a clean ablation.
  if (cfg.has_memory() && cfg.chunk_encoder_layers > 0) {
    // std 1: the [CLS] row sits beside RMS-normalised token states, whose entries have that scale.
    normal("memory.cls", {dm}, 1.0);
    ones("memory.lmk_norm.weight", {dm});
    // Each block adds two residual branches to the encoder's stream: scaled down like the model's own.
    const double std_enc_out = cfg.initializer_range / std::sqrt(2.0 * static_cast<double>(cfg.chunk_encoder_layers));
    for (int64_t i = 0; i < cfg.chunk_encoder_layers; ++i) {
      const std::string p = fmt::format("memory.encoder.{}.", i);
      ones(p + "attn_norm.weight", {dm});
      normal(p + "attn.q_proj.weight", {HQ * D, dm}, std_in);
      normal(p + "attn.k_proj.weight", {HQ * D, dm}, std_in);
      normal(p + "attn.v_proj.weight", {HQ * D, dm}, std_in);
      normal(p + "attn.o_proj.weight", {dm, HQ * D}, std_enc_out);
      if (cfg.qk_norm) {
        ones(p + "attn.q_norm.weight", {D});
        ones(p + "attn.k_norm.weight", {D});
      }
      ones(p + "ffn_norm.weight", {dm});
      normal(p + "ffn.gate_proj.weight", {F, dm}, std_in);
      normal(p + "ffn.up_proj.weight", {F, dm}, std_in);
      normal(p + "ffn.down_proj.weight", {dm, F}, std_enc_out);
    }
  }
  // Last again: turning the retrieval norm on leaves every other parameter's initial value unchanged.
  if (cfg.has_memory() && cfg.hsa_retrieval_norm) {
    for (int64_t i = 0; i < cfg.num_layers(); ++i)
      if (cfg.is_hsa_layer(i)) ones(fmt::format("layers.{}.hsa.retrieval_norm.weight", i), {dr / H});
    ones("memory.landmark_norm.weight", {dr / H});
  }
  return specs;
}

int64_t count_parameters(const std::vector<ParamSpec>& specs) {
  int64_t total = 0;
  for (const ParamSpec& s : specs) total += shape_numel(s.shape);
  return total;
}

int64_t active_parameters_per_token(const ModelConfig& cfg) {
  int64_t total = count_parameters(model_param_specs(cfg));
  const int64_t idle_experts = cfg.num_experts - cfg.num_experts_per_tok;
  const int64_t per_expert = 3 * cfg.moe_intermediate_size * cfg.hidden_size;
  for (int64_t i = 0; i < cfg.num_layers(); ++i)
    if (cfg.is_moe_layer(i)) total -= idle_experts * per_expert;
  return total;
}

double state_bytes_per_token(const ModelConfig& cfg, DType dtype) {
  if (!cfg.has_memory()) return 0.0;
  const double values = 2.0 * static_cast<double>(cfg.num_key_value_heads * cfg.head_dim) +
                        static_cast<double>(cfg.retrieval_dim) / static_cast<double>(cfg.chunk_size);
  return values * static_cast<double>(dtype_size(dtype));
}

namespace {
// splitmix64 finaliser: neighbouring (seed, index) pairs give unrelated streams.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

std::map<std::string, Tensor> init_parameters(const ModelConfig& cfg, uint64_t seed, DType dtype) {
  HSA_CHECK(is_floating(dtype), "init_parameters: dtype must be floating, got {}", dtype_name(dtype));
  std::map<std::string, Tensor> params;
  const std::vector<ParamSpec> specs = model_param_specs(cfg);
  for (size_t k = 0; k < specs.size(); ++k) {
    const ParamSpec& s = specs[k];
    switch (s.init) {
      case ParamSpec::Init::normal:
        params[s.name] = randn(s.shape, mix(mix(seed) ^ static_cast<uint64_t>(k)), s.stddev, dtype);
        break;
      case ParamSpec::Init::ones: params[s.name] = Tensor::full(s.shape, 1.0, dtype); break;
      case ParamSpec::Init::zeros: params[s.name] = Tensor::zeros(s.shape, dtype); break;
    }
  }
  return params;
}

}  // namespace hsa

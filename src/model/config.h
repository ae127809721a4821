// Model configuration of an HSA-UltraLong model (docs/architecture.md §2.8): one JSON file with Hugging Face
// style keys. Field names are the JSON keys. Loading is strict: unknown keys, wrong types, missing
// required keys and inconsistent values are all reported together in one hsa::Error, never defaulted.
//
// Layer stack: [num_lower_layers SWA blocks] -> memory builder -> num_upper_groups x
// [1 HSA block + group_layers SWA blocks]; layer i is HSA when i >= num_lower_layers and
// (i - num_lower_layers) % (1 + group_layers) == 0.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace hsa {

struct ModelConfig {
  // Sizes (required unless a default is given).
  int64_t hidden_size = 0;
  int64_t num_attention_heads = 0;  // HQ
  int64_t num_key_value_heads = 0;  // H; also the number of retrieval heads
  int64_t head_dim = 0;             // D; even (RoPE rotates pairs)
  int64_t vocab_size = 0;
  int64_t intermediate_size = 0;    // dense SwiGLU width
  int64_t sliding_window = 0;       // window of the plain SWA blocks
  int64_t hsa_sliding_window = 0;   // window of the SWA inside HSA blocks [= sliding_window]
  int64_t chunk_size = 64;          // S
  int64_t chunk_topk = 8;           // K chunks retrieved per query
  int64_t retrieval_dim = 0;        // d_r in total, split into num_key_value_heads retrieval heads
  int64_t num_lower_layers = 0;
  int64_t num_upper_groups = 0;
  int64_t group_layers = 0;         // plain SWA blocks after each group's HSA block
  // Mixture of experts (num_experts == 0: dense FFN everywhere).
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t num_shared_experts = 0;
  int64_t moe_intermediate_size = 0;
  int64_t first_k_dense_layers = 1;  // dense FFN in the first k layers when MoE
  double router_aux_loss_coef = 0.01;
  // Numerics and options.
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool qk_norm = true;
  bool hsa_qk_norm = true;
  // RMS-normalise the retrieval query and the landmarks per retrieval head (learned weights of dr/H): bounds the
  // retrieval scores, which otherwise grow until the chunk softmax is one-hot and retrieval stops learning.
  bool hsa_retrieval_norm = false;
  bool hsa_window_mask = false;      // mask chunks wholly inside the HSA block's SWA window
  std::string chunk_weighting = "softmax";  // "softmax" | "stick_breaking"
  bool hsa_bypass_residual = false;
  int64_t chunk_encoder_layers = 0;  // 0 = mean pooling; > 0 = blocks of the chunk encoder (model/chunk_encoder.h)
  // With the encoder, what the landmark is read from: "cls" (its [CLS] output) or "mean" (the mean of the chunk's
  // token outputs; [CLS] then only serves as a token the others attend to). At initialisation the [CLS] row makes
  // every "cls" landmark nearly the same vector; "mean" landmarks differ (docs/architecture.md, the chunk encoder).
  std::string chunk_encoder_landmark = "cls";
  double initializer_range = 0.02;
  std::string model_type = "hsa_ultralong";
  int64_t max_train_length = 0;      // informational only
  std::string tokenizer = "bytes";   // "bytes", or a tokenizer.json beside the config (text/tokenizer.h)

  // `source` names the config in error messages (a file path, or "<json>").
  static ModelConfig from_json(const nlohmann::json& json, const std::string& source = "<json>");
  static ModelConfig from_file(const std::string& path);
  nlohmann::json to_json() const;  // every field, defaults included
  void save(const std::string& path) const;  // atomic (path.tmp + fsync + rename)

  int64_t num_layers() const { return num_lower_layers + num_upper_groups * (1 + group_layers); }
  bool is_hsa_layer(int64_t i) const {
    return i >= num_lower_layers && (i - num_lower_layers) % (1 + group_layers) == 0;
  }
  bool is_moe_layer(int64_t i) const { return num_experts > 0 && i >= first_k_dense_layers; }
  int64_t memory_layer() const { return num_lower_layers; }  // the memory is built from the input of this layer
  int64_t window_of_layer(int64_t i) const { return is_hsa_layer(i) ? hsa_sliding_window : sliding_window; }
  bool has_memory() const { return num_upper_groups > 0; }
  int64_t retrieval_head_dim() const { return retrieval_dim / num_key_value_heads; }
};

}  // namespace hsa

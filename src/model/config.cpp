#include "model/config.h"

#include "model/param_spec.h"
#include "util/file_util.h"
#include "util/json_util.h"

#include <hsa/error.h>

#include <algorithm>
#include <set>
#include <variant>
#include <vector>

namespace hsa {

namespace {

using Member = std::variant<int64_t ModelConfig::*, double ModelConfig::*, bool ModelConfig::*,
                            std::string ModelConfig::*>;

struct Field {
  const char* key;
  Member member;
  bool required;
};

// Every JSON key, in the order to_json writes them.
const std::vector<Field>& fields() {
  static const std::vector<Field> table = {
      {"model_type", &ModelConfig::model_type, false},
      {"vocab_size", &ModelConfig::vocab_size, true},
      {"hidden_size", &ModelConfig::hidden_size, true},
      {"num_attention_heads", &ModelConfig::num_attention_heads, true},
      {"num_key_value_heads", &ModelConfig::num_key_value_heads, true},
      {"head_dim", &ModelConfig::head_dim, true},
      {"intermediate_size", &ModelConfig::intermediate_size, true},
      {"sliding_window", &ModelConfig::sliding_window, true},
      {"hsa_sliding_window", &ModelConfig::hsa_sliding_window, false},
      {"chunk_size", &ModelConfig::chunk_size, false},
      {"chunk_topk", &ModelConfig::chunk_topk, false},
      {"retrieval_dim", &ModelConfig::retrieval_dim, true},
      {"num_lower_layers", &ModelConfig::num_lower_layers, true},
      {"num_upper_groups", &ModelConfig::num_upper_groups, true},
      {"group_layers", &ModelConfig::group_layers, true},
      {"num_experts", &ModelConfig::num_experts, false},
      {"num_experts_per_tok", &ModelConfig::num_experts_per_tok, false},
      {"num_shared_experts", &ModelConfig::num_shared_experts, false},
      {"moe_intermediate_size", &ModelConfig::moe_intermediate_size, false},
      {"first_k_dense_layers", &ModelConfig::first_k_dense_layers, false},
      {"router_aux_loss_coef", &ModelConfig::router_aux_loss_coef, false},
      {"rope_theta", &ModelConfig::rope_theta, false},
      {"rms_norm_eps", &ModelConfig::rms_norm_eps, false},
      {"tie_word_embeddings", &ModelConfig::tie_word_embeddings, false},
      {"qk_norm", &ModelConfig::qk_norm, false},
      {"hsa_qk_norm", &ModelConfig::hsa_qk_norm, false},
      {"hsa_retrieval_norm", &ModelConfig::hsa_retrieval_norm, false},
      {"hsa_window_mask", &ModelConfig::hsa_window_mask, false},
      {"chunk_weighting", &ModelConfig::chunk_weighting, false},
      {"hsa_bypass_residual", &ModelConfig::hsa_bypass_residual, false},
      {"chunk_encoder_layers", &ModelConfig::chunk_encoder_layers, false},
      {"chunk_encoder_landmark", &ModelConfig::chunk_encoder_landmark, false},
      {"initializer_range", &ModelConfig::initializer_range, false},
      {"max_train_length", &ModelConfig::max_train_length, false},
      {"tokenizer", &ModelConfig::tokenizer, false},
  };
  return table;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string json_type(const nlohmann::json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "float";
  return v.type_name();
}

}  // namespace

ModelConfig ModelConfig::from_json(const nlohmann::json& json, const std::string& source) {
  if (!json.is_object()) fail("config {}: expected a JSON object, got {}", source, json_type(json));
  ModelConfig cfg;
  std::vector<std::string> problems;
  auto problem = [&problems](std::string msg) { problems.push_back(std::move(msg)); };

  for (const auto& [key, value] : json.items()) {
    auto it = std::find_if(fields().begin(), fields().end(), [&](const Field& f) { return key == f.key; });
    if (it != fields().end()) continue;
    std::string best;
    size_t best_dist = 4;
    for (const Field& f : fields()) {
      size_t d = edit_distance(key, f.key);
      if (d < best_dist) best_dist = d, best = f.key;
    }
    if (!best.empty())
      problem(fmt::format("unknown key '{}' (did you mean '{}'?)", key, best));
    else
      problem(fmt::format("unknown key '{}'", key));
  }

  bool has_hsa_window = false;
  std::set<std::string_view> unusable;  // missing or mistyped: their values are not checked again
  for (const Field& f : fields()) {
    auto it = json.find(f.key);
    if (it == json.end()) {
      if (f.required) {
        problem(fmt::format("missing required key '{}'", f.key));
        unusable.insert(f.key);
      }
      continue;
    }
    const nlohmann::json& v = *it;
    bool ok = std::visit(
        [&](auto member) {
          using T = std::remove_reference_t<decltype(cfg.*member)>;
          if constexpr (std::is_same_v<T, int64_t>) {
            if (!v.is_number_integer()) return false;
            cfg.*member = v.get<int64_t>();
          } else if constexpr (std::is_same_v<T, double>) {
            if (!v.is_number()) return false;
            cfg.*member = v.get<double>();
          } else if constexpr (std::is_same_v<T, bool>) {
            if (!v.is_boolean()) return false;
            cfg.*member = v.get<bool>();
          } else {
            if (!v.is_string()) return false;
            cfg.*member = v.get<std::string>();
          }
          return true;
        },
        f.member);
    if (!ok) {
      const char* want = std::visit(
          [](auto member) {
            using T = std::remove_reference_t<decltype(std::declval<ModelConfig&>().*member)>;
            if constexpr (std::is_same_v<T, int64_t>) return "an integer";
            else if constexpr (std::is_same_v<T, double>) return "a number";
            else if constexpr (std::is_same_v<T, bool>) return "a boolean";
            else return "a string";
          },
          f.member);
      problem(fmt::format("'{}' must be {}, got {} {}", f.key, want, json_type(v), v.dump()));
      unusable.insert(f.key);
      continue;
    }
    if (std::string_view(f.key) == "hsa_sliding_window") has_hsa_window = true;
  }
  if (!has_hsa_window) cfg.hsa_sliding_window = cfg.sliding_window;

  // Value checks. Only keys that parsed are checked, so a missing key reports once, not twice.
  auto present = [&](const char* key) { return !unusable.count(key); };
  auto positive = [&](const char* key, int64_t value) {
    if (present(key) && value <= 0) problem(fmt::format("'{}' must be positive, got {}", key, value));
  };
  auto non_negative = [&](const char* key, int64_t value) {
    if (present(key) && value < 0) problem(fmt::format("'{}' must be >= 0, got {}", key, value));
  };
  positive("hidden_size", cfg.hidden_size);
  positive("num_attention_heads", cfg.num_attention_heads);
  positive("num_key_value_heads", cfg.num_key_value_heads);
  positive("head_dim", cfg.head_dim);
  positive("vocab_size", cfg.vocab_size);
  positive("intermediate_size", cfg.intermediate_size);
  positive("sliding_window", cfg.sliding_window);
  if (has_hsa_window) positive("hsa_sliding_window", cfg.hsa_sliding_window);
  positive("chunk_size", cfg.chunk_size);
  positive("chunk_topk", cfg.chunk_topk);
  positive("retrieval_dim", cfg.retrieval_dim);
  non_negative("num_lower_layers", cfg.num_lower_layers);
  non_negative("num_upper_groups", cfg.num_upper_groups);
  non_negative("group_layers", cfg.group_layers);
  non_negative("num_experts", cfg.num_experts);
  non_negative("num_experts_per_tok", cfg.num_experts_per_tok);
  non_negative("num_shared_experts", cfg.num_shared_experts);
  non_negative("moe_intermediate_size", cfg.moe_intermediate_size);
  non_negative("first_k_dense_layers", cfg.first_k_dense_layers);
  non_negative("chunk_encoder_layers", cfg.chunk_encoder_layers);
  non_negative("max_train_length", cfg.max_train_length);
  if (cfg.rope_theta <= 0) problem(fmt::format("'rope_theta' must be positive, got {}", cfg.rope_theta));
  if (cfg.rms_norm_eps <= 0) problem(fmt::format("'rms_norm_eps' must be positive, got {}", cfg.rms_norm_eps));
  if (cfg.initializer_range <= 0)
    problem(fmt::format("'initializer_range' must be positive, got {}", cfg.initializer_range));
  if (cfg.router_aux_loss_coef < 0)
    problem(fmt::format("'router_aux_loss_coef' must be >= 0, got {}", cfg.router_aux_loss_coef));

  if (cfg.num_attention_heads > 0 && cfg.num_key_value_heads > 0 &&
      cfg.num_attention_heads % cfg.num_key_value_heads != 0)
    problem(fmt::format("num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
                        cfg.num_attention_heads, cfg.num_key_value_heads));
  if (cfg.head_dim > 0 && cfg.head_dim % 2 != 0)
    problem(fmt::format("'head_dim' must be even (RoPE rotates pairs), got {}", cfg.head_dim));
  if (cfg.retrieval_dim > 0 && cfg.num_key_value_heads > 0 && cfg.retrieval_dim % cfg.num_key_value_heads != 0)
    problem(fmt::format("retrieval_dim ({}) must be a multiple of num_key_value_heads ({}): one retrieval head "
                        "per KV head",
                        cfg.retrieval_dim, cfg.num_key_value_heads));
  if (cfg.num_lower_layers >= 0 && cfg.num_upper_groups >= 0 && cfg.group_layers >= 0 && cfg.num_layers() <= 0 &&
      present("num_lower_layers") && present("num_upper_groups") && present("group_layers"))
    problem("the model has no layers (num_lower_layers + num_upper_groups * (1 + group_layers) == 0)");

  if (cfg.num_experts > 0) {
    if (cfg.num_experts_per_tok == 0)
      problem(fmt::format("num_experts is {} but num_experts_per_tok is 0", cfg.num_experts));
    if (cfg.moe_intermediate_size <= 0)
      problem(fmt::format("num_experts is {} but moe_intermediate_size is not set (must be positive)",
                          cfg.num_experts));
  } else if (cfg.num_shared_experts > 0) {
    problem(fmt::format("num_shared_experts is {} but num_experts is 0 (shared experts belong to MoE layers)",
                        cfg.num_shared_experts));
  }
  if (cfg.num_experts_per_tok > cfg.num_experts && cfg.num_experts >= 0)
    problem(fmt::format("num_experts_per_tok ({}) exceeds num_experts ({})", cfg.num_experts_per_tok,
                        cfg.num_experts));
  if (cfg.num_layers() > 0 && cfg.first_k_dense_layers > cfg.num_layers())
    problem(fmt::format("first_k_dense_layers ({}) exceeds the number of layers ({})", cfg.first_k_dense_layers,
                        cfg.num_layers()));
  if (cfg.chunk_weighting != "softmax" && cfg.chunk_weighting != "stick_breaking")
    problem(fmt::format("unknown chunk_weighting '{}' (expected \"softmax\" or \"stick_breaking\")",
                        cfg.chunk_weighting));
  if (cfg.chunk_encoder_landmark != "cls" && cfg.chunk_encoder_landmark != "mean")
    problem(fmt::format("unknown chunk_encoder_landmark '{}' (expected \"cls\" or \"mean\")",
                        cfg.chunk_encoder_landmark));
  else if (cfg.chunk_encoder_landmark != "cls" && cfg.chunk_encoder_layers == 0)
    problem(fmt::format("chunk_encoder_landmark '{}' needs a chunk encoder (chunk_encoder_layers > 0)",
                        cfg.chunk_encoder_landmark));
  if (cfg.chunk_encoder_layers > 0 && cfg.num_upper_groups == 0)
    problem(fmt::format("chunk_encoder_layers = {} but num_upper_groups is 0 (the encoder builds the HSA chunk "
                        "memory, which only HSA groups read)",
                        cfg.chunk_encoder_layers));
  if (cfg.model_type != "hsa_ultralong")
    problem(fmt::format("unsupported model_type '{}' (expected \"hsa_ultralong\")", cfg.model_type));

  // Sizes that are each plausible can still multiply past what a byte count holds; such a config must be
  // refused here, not crash the allocator later. Dimensions are bounded first, so the layout's own products
  // (heads x head_dim) cannot overflow, then the whole parameter set is counted in floating point.
  constexpr int64_t kMaxDim = (int64_t(1) << 31) - 1, kMaxLayers = 4096;
  for (const Field& f : fields()) {
    if (auto* member = std::get_if<int64_t ModelConfig::*>(&f.member); member && cfg.**member > kMaxDim)
      problem(fmt::format("'{}' is {}, more than the largest supported size {}", f.key, cfg.**member, kMaxDim));
  }
  if (problems.empty() && cfg.num_layers() > kMaxLayers)
    problem(fmt::format("the model has {} layers, more than the supported {}", cfg.num_layers(), kMaxLayers));
  if (problems.empty()) {
    double bytes = 0;
    for (const ParamSpec& spec : model_param_specs(cfg)) {
      double numel = 1;
      for (int64_t d : spec.shape) numel *= double(d);
      bytes += numel * 8.0;  // f64, the widest dtype a parameter set is held in (gradient checks)
    }
    if (bytes >= 0x1p62)
      problem(fmt::format("the parameters would take {:.3g} bytes in f64, more than a byte count can hold; the "
                          "sizes are not plausible",
                          bytes));
  }

  if (!problems.empty()) {
    std::string msg = fmt::format("config {}: {} problem{}:", source, problems.size(), problems.size() == 1 ? "" : "s");
    for (const std::string& p : problems) msg += "\n  " + p;
    throw Error(msg);
  }
  return cfg;
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  return from_json(parse_json_strict(read_regular_file(path, "config"), "config " + path), path);
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json json = nlohmann::json::object();
  for (const Field& f : fields()) std::visit([&](auto member) { json[f.key] = this->*member; }, f.member);
  return json;
}

void ModelConfig::save(const std::string& path) const { write_file_atomic(path, to_json().dump(2) + "\n"); }

}  // namespace hsa

// `hsa info`: what a config (or a checkpoint) describes: the layer stack, parameter counts, and how much
// state each token of context costs.
//   hsa info --config configs/tiny.json
//   hsa info --model runs/ckpt [--dtype bf16]
#include "cli/command.h"
#include "cli/tier_options.h"
#include "model/checkpoint.h"
#include "model/memory_tiers.h"
#include "model/param_spec.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <memory>
#include <optional>

namespace hsa::cli {

namespace {

struct InfoOptions {
  std::string config;
  std::string model;
  std::string dtype;  // of the per-token state; default: the checkpoint's, else bf16
  int64_t context = 0;  // > 0: print the chunk memory's plan per tier for this many positions
  std::string device = "cpu";
  TierRequest tiers;
};

// Where `context` positions of chunk memory go with the requested budgets (no budget: all where the model runs).
void print_tier_plan(const ModelConfig& cfg, DType dtype, const InfoOptions& opts) {
  MemoryTiers tiers;
  if (opts.tiers.device_budget > 0) tiers.device_budget = opts.tiers.device_budget;
  tiers.host_budget = opts.tiers.host_budget;
  tiers.disk_dir = opts.tiers.disk_dir;
  const int64_t chunks = cfg.has_memory() ? opts.context / cfg.chunk_size : 0;
  TierPlan plan = plan_tiers(tiers, cfg, dtype, chunks);
  fmt::print("chunk memory for {} positions ({} chunks, {}, {} per page of K/V):\n", opts.context, chunks,
             dtype_name(dtype), human_bytes(double(plan.page_bytes)));
  for (const std::string& line : describe_plan(plan, opts.device == "cpu" ? "RAM" : "GPU")) fmt::print("{}\n", line);
}

std::string human_count(int64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f}B", n / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1'000) return fmt::format("{:.1f}K", n / 1e3);
  return fmt::format("{}", n);
}

int run_info(const InfoOptions& opts) {
  if (opts.device == "cpu" && opts.tiers.host_budget > 0)
    fail_argument("--host-budget is for --device cuda (on the cpu the first tier is RAM: use --memory-budget)");
  ModelConfig cfg;
  std::optional<DType> stored_dtype;
  Checkpoint ckpt;
  if (!opts.model.empty()) {
    ckpt = load_checkpoint(opts.model);  // validates config and every tensor
    cfg = ckpt.config;
    stored_dtype = ckpt.params.at("embed.weight").dtype();
    fmt::print("checkpoint: {} ({} tensors, {})\n", opts.model, ckpt.params.size(), dtype_name(*stored_dtype));
    for (const auto& [key, value] : ckpt.metadata) fmt::print("  {}: {}\n", key, value);
  } else {
    cfg = ModelConfig::from_file(opts.config);
    fmt::print("config: {}\n", opts.config);
  }
  const DType state_dtype = !opts.dtype.empty() ? parse_dtype(opts.dtype) : stored_dtype.value_or(DType::bf16);

  const int64_t L = cfg.num_layers();
  fmt::print("{}: {} layers ({} lower SWA, {} groups of 1 HSA + {} SWA), hidden {}, vocab {}{}\n", cfg.model_type, L,
             cfg.num_lower_layers, cfg.num_upper_groups, cfg.group_layers, cfg.hidden_size, cfg.vocab_size,
             cfg.tie_word_embeddings ? " (tied embeddings)" : "");
  fmt::print("attention: {} query heads, {} kv heads, head_dim {}, rope_theta {}, qk_norm {}\n",
             cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.rope_theta,
             cfg.qk_norm ? "on" : "off");
  if (cfg.has_memory())
    fmt::print("hsa: chunk {}, top-{} chunks, retrieval dim {} ({} heads x {}), {} weighting, hsa_qk_norm {}, "
               "hsa_retrieval_norm {}{}\n",
               cfg.chunk_size, cfg.chunk_topk, cfg.retrieval_dim, cfg.num_key_value_heads, cfg.retrieval_head_dim(),
               cfg.chunk_weighting, cfg.hsa_qk_norm ? "on" : "off", cfg.hsa_retrieval_norm ? "on" : "off",
               cfg.hsa_window_mask ? ", window mask" : "");
  if (cfg.has_memory() && cfg.chunk_encoder_layers > 0)
    fmt::print("chunk encoder: {} bidirectional block(s) over each chunk + [CLS] ({} heads x {}, SwiGLU {}); "
               "landmark from {}\n",
               cfg.chunk_encoder_layers, cfg.num_attention_heads, cfg.head_dim, cfg.intermediate_size,
               cfg.chunk_encoder_landmark == "cls" ? "[CLS]" : "the mean of the token outputs");
  else if (cfg.has_memory())
    fmt::print("chunk encoder: none (landmark from the mean of the chunk's normed states)\n");
  if (cfg.num_experts > 0)
    fmt::print("ffn: dense SwiGLU {} in the first {} layer(s); MoE {} experts (top-{}, {} shared) of width {}\n",
               cfg.intermediate_size, cfg.first_k_dense_layers, cfg.num_experts, cfg.num_experts_per_tok,
               cfg.num_shared_experts, cfg.moe_intermediate_size);
  else
    fmt::print("ffn: dense SwiGLU {}\n", cfg.intermediate_size);

  fmt::print("layers:\n");
  for (int64_t i = 0; i < L; ++i) {
    if (cfg.has_memory() && i == cfg.memory_layer())
      fmt::print("     -- memory built here, from the hidden states entering layer {} --\n", i);
    fmt::print("  {:>3} {} {:<5}  window {}\n", i, cfg.is_hsa_layer(i) ? "hsa" : "swa",
               cfg.is_moe_layer(i) ? "moe" : "dense", cfg.window_of_layer(i));
  }

  const int64_t total = count_parameters(model_param_specs(cfg));
  const int64_t active = active_parameters_per_token(cfg);
  fmt::print("parameters: {} total ({}), {} active per token ({})\n", total, human_count(total), active,
             human_count(active));

  const double per_token = state_bytes_per_token(cfg, state_dtype);
  fmt::print("state per token of context ({}): {:.2f} bytes (chunk memory K+V {} values + landmark {}/{} values)\n",
             dtype_name(state_dtype), per_token, 2 * cfg.num_key_value_heads * cfg.head_dim,
             cfg.has_memory() ? cfg.retrieval_dim : 0, cfg.chunk_size);
  fmt::print("  1M tokens (2^20): {}\n", human_bytes(per_token * (1 << 20)));
  fmt::print("  16M tokens (2^24): {}\n", human_bytes(per_token * (1 << 24)));
  // The SWA caches do not grow with the context: at most `window` tokens of K and V per layer.
  double swa_bytes = 0;
  for (int64_t i = 0; i < L; ++i)
    swa_bytes += static_cast<double>(cfg.window_of_layer(i) * 2 * cfg.num_key_value_heads * cfg.head_dim) *
                 static_cast<double>(dtype_size(state_dtype));
  fmt::print("sliding-window KV caches (fixed, any context length): {}\n", human_bytes(swa_bytes));
  if (opts.context > 0) print_tier_plan(cfg, state_dtype, opts);
  return 0;
}

Command reg("info", "print a model's layers, parameter counts and state bytes per token of context",
            [](CLI::App& app) {
              auto opts = std::make_shared<InfoOptions>();
              auto* config = app.add_option("-c,--config", opts->config, "model config JSON file")
                                 ->check(CLI::ExistingFile);
              auto* model = app.add_option("-m,--model", opts->model, "checkpoint directory (config.json + "
                                                                      "model.safetensors or its shards)")
                                ->check(CLI::ExistingDirectory);
              config->excludes(model);
              model->excludes(config);
              app.add_option("--dtype", opts->dtype,
                             "dtype of the per-token state: f32 | bf16 (default: the checkpoint's, else bf16)")
                  ->check(CLI::IsMember({"f32", "bf16"}));
              app.add_option("--context", opts->context,
                             "print where the chunk memory of this many positions goes, per tier")
                  ->check(CLI::PositiveNumber);
              app.add_option("--device", opts->device, "device of the plan: cpu (tiers RAM, disk) or cuda (GPU, "
                                                       "pinned host, disk)")
                  ->check(CLI::IsMember({"cpu", "cuda"}))
                  ->capture_default_str();
              add_tier_options(app, opts->tiers);
              app.callback([config, model] {
                if (config->count() == 0 && model->count() == 0)
                  throw CLI::RequiredError("one of --config or --model");
              });
              return [opts] { return run_info(*opts); };
            });

}  // namespace

}  // namespace hsa::cli

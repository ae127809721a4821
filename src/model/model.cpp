#include "model/model.h"

#include "model/param_spec.h"
#include "model/safetensors.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"

namespace hsa {

size_t InferenceState::bytes() const {
  size_t total = memory.memory.bytes();
  for (const KvHistory& h : kv) total += h.bytes();
  return total;
}

Model::Model(ModelConfig config, TensorMap params) : config_(std::move(config)), params_(std::move(params)) {
  DType dtype = params_.empty() ? DType::f32 : params_.begin()->second.dtype();
  check_tensors_match(params_, model_param_specs(config_), dtype);
}

Device Model::device() const { return need(params_, "embed.weight").device(); }
DType Model::dtype() const { return need(params_, "embed.weight").dtype(); }

InferenceState Model::new_state() const {
  InferenceState state;
  state.kv.resize(config_.num_layers());
  return state;
}

LayerContext Model::layer(int64_t i) const { return LayerContext{config_, params_, fmt::format("layers.{}.", i)}; }

const Tensor& Model::lm_head() const {
  return config_.tie_word_embeddings ? need(params_, "embed.weight") : need(params_, "lm_head.weight");
}

Tensor Model::forward(const Tensor& ids_in, InferenceState& state, Tensor* aux_loss, ForwardCache* cache,
                      std::vector<HsaCache>* hsa_trace) const {
  const ModelConfig& c = config_;
  check_ndim("Model::forward", "ids", ids_in, 2);
  check_dtype("Model::forward", "ids", ids_in, DType::i32);
  Tensor ids = ids_in.to(device());
  HSA_CHECK(ids.dim(1) > 0, "Model::forward: empty input (no tokens)");
  int64_t L = c.num_layers(), pos0 = state.position;
  if (static_cast<int64_t>(state.kv.size()) != L) state.kv.resize(L);
  if (cache) {
    HSA_CHECK(pos0 == 0, "Model::forward: training forward needs a fresh state");
    cache->ids = ids;
    cache->attn.assign(L, {});
    cache->hsa.assign(L, {});
    cache->ffn.assign(L, {});
  }
  HSA_CHECK(!(cache && hsa_trace), "Model::forward: give a training cache or an HSA trace, not both");
  if (hsa_trace) hsa_trace->assign(L, {});
  if (aux_loss) *aux_loss = Tensor::zeros({1}, DType::f64, device());
  LayerContext memory_ctx{c, params_, "memory."};
  Tensor x = ops::embedding_forward(need(params_, "embed.weight"), ids);
  for (int64_t i = 0; i < L; ++i) {
    LayerContext ctx = layer(i);
    if (c.num_upper_groups > 0 && i == c.memory_layer())
      memory_build_forward(memory_ctx, x, state.memory, cache ? &cache->memory : nullptr);
    KvHistory* history = cache ? nullptr : &state.kv[i];
    x = ops::add(x, attention_forward(ctx, c.window_of_layer(i), x, pos0, history, cache ? &cache->attn[i] : nullptr));
    FfnCache* ffn_cache = cache ? &cache->ffn[i] : nullptr;
    if (c.is_hsa_layer(i)) {
      HsaCache* hsa_cache = cache ? &cache->hsa[i] : hsa_trace ? &(*hsa_trace)[i] : nullptr;
      Tensor o = hsa_forward(ctx, x, pos0, state.memory.memory, hsa_cache);
      if (c.hsa_bypass_residual) {  // x + FFN(norm(x + HSA)): the retrieved signal skips the residual stream
        x = ops::add(x, ffn_forward(ctx, c.is_moe_layer(i), ops::add(x, o), aux_loss, ffn_cache));
        continue;
      }
      x = ops::add(x, o);
    }
    x = ops::add(x, ffn_forward(ctx, c.is_moe_layer(i), x, aux_loss, ffn_cache));
  }
  auto norm = ops::rmsnorm_forward(x, need(params_, "final_norm.weight"), c.rms_norm_eps);
  if (cache) cache->final_x = x, cache->final_xn = norm.y, cache->final_rstd = norm.rstd;
  state.position += ids.dim(1);
  return ops::linear_forward(norm.y, lm_head());
}

TensorMap Model::backward(const Tensor& dlogits, double daux, const ForwardCache& cache) const {
  const ModelConfig& c = config_;
  TensorMap grads;
  auto head = ops::linear_backward(dlogits, cache.final_xn, lm_head());
  accumulate_grad(grads, c.tie_word_embeddings ? "embed.weight" : "lm_head.weight", head.dw);
  auto norm = ops::rmsnorm_backward(head.dx, cache.final_x, need(params_, "final_norm.weight"), cache.final_rstd);
  accumulate_grad(grads, "final_norm.weight", norm.dweight);
  Tensor dx = norm.dx;
  MemoryGrads memory_grads;
  LayerContext memory_ctx{c, params_, "memory."};
  for (int64_t i = c.num_layers() - 1; i >= 0; --i) {
    LayerContext ctx = layer(i);
    Tensor dffn_in = ffn_backward(ctx, cache.ffn[i], dx, daux, grads);
    if (c.is_hsa_layer(i)) {
      if (c.hsa_bypass_residual) {
        ops::add_(dx, dffn_in);  // ffn input was x + o: its gradient reaches x and o alike
        ops::add_(dx, hsa_backward(ctx, cache.hsa[i], dffn_in, grads, memory_grads));
      } else {
        ops::add_(dx, dffn_in);
        ops::add_(dx, hsa_backward(ctx, cache.hsa[i], dx, grads, memory_grads));
      }
    } else {
      ops::add_(dx, dffn_in);
    }
    ops::add_(dx, attention_backward(ctx, cache.attn[i], dx, grads));
    if (c.num_upper_groups > 0 && i == c.memory_layer())
      ops::add_(dx, memory_build_backward(memory_ctx, cache.memory, memory_grads, grads));
  }
  accumulate_grad(grads, "embed.weight", ops::embedding_backward(dx, cache.ids, c.vocab_size));
  return grads;
}

}  // namespace hsa

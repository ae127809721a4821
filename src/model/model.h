// The HSA-UltraLong model (docs/architecture.md §2.2): embedding, lower SWA blocks, the chunk-memory builder, upper
// groups (one HSA block then SWA blocks), final norm and LM head. One forward serves training (a full
// sequence from a fresh state, with a cache for backward) and inference (segments of any size continuing a
// state): the two give the same logits by construction.
#pragma once
#include "model/attention_layer.h"
#include "model/chunk_memory.h"
#include "model/config.h"
#include "model/ffn_layer.h"
#include "model/hsa_layer.h"
#include "model/tensor_map.h"

#include <vector>

namespace hsa {

// Everything incremental inference keeps between segments.
struct InferenceState {
  std::vector<KvHistory> kv;  // per layer: the last window - 1 keys/values
  MemoryState memory;
  int64_t position = 0;  // tokens consumed so far
  size_t bytes() const;
};

struct ForwardCache {
  Tensor ids;
  std::vector<AttentionCache> attn;
  std::vector<HsaCache> hsa;
  std::vector<FfnCache> ffn;
  MemoryBuildCache memory;
  Tensor final_x, final_xn, final_rstd;
};

class Model {
 public:
  Model(ModelConfig config, TensorMap params);  // checks every parameter against the config
  const ModelConfig& config() const { return config_; }
  const TensorMap& params() const { return params_; }
  Device device() const;  // where the parameters live; forward() moves cpu ids there
  DType dtype() const;    // the parameters' (compute) dtype
  TensorMap& mutable_params() { return params_; }

  InferenceState new_state() const;

  // ids i32 [B, n] hold positions state.position ... + n - 1; returns logits [B, n, V] and advances the state.
  // With `cache` (training) the state must be fresh. *aux_loss receives the MoE load-balancing loss (summed over
  // the MoE layers, 0 without any) as an f64 [1] tensor on device(): the forward never waits for the device for it;
  // read it with aux_loss->item() (on cuda a device->host copy: do it where the host waits anyway).
  // With `hsa_trace` (diagnostics such as hsa eval retrieval; any state, no `cache`), each HSA layer's HsaCache of
  // this call lands at its layer index (other entries stay empty): the retrieval queries, landmarks, selected
  // chunks and weights. It holds this call's activations and views of the chunk memory, so call it on a short
  // segment (the last prompt token) after a plain prefill. Needs the whole chunk memory resident (no tiers).
  Tensor forward(const Tensor& ids, InferenceState& state, Tensor* aux_loss = nullptr, ForwardCache* cache = nullptr,
                 std::vector<HsaCache>* hsa_trace = nullptr) const;

  // Gradients of <dlogits, logits> + daux * aux_loss with respect to every parameter.
  TensorMap backward(const Tensor& dlogits, double daux, const ForwardCache& cache) const;

 private:
  ModelConfig config_;
  TensorMap params_;
  LayerContext layer(int64_t i) const;
  const Tensor& lm_head() const;
};

}  // namespace hsa

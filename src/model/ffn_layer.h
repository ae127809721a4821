// The feed-forward branch of a block: RMSNorm then a dense SwiGLU or a Mixture-of-Experts (docs/architecture.md §2.7).
#pragma once
#include "model/layer_context.h"
#include "ops/moe.h"

namespace hsa {

struct FfnCache {
  Tensor x, xn, x_rstd;
  Tensor gate, up, hidden;  // dense
  ops::MoeOut moe;          // MoE
  bool is_moe = false;
};

// Returns the branch for x [B, n, dm]; adds the MoE load-balancing loss (already scaled) to *aux_loss, an f64 [1]
// tensor on x's device, in place (no wait for the device).
Tensor ffn_forward(const LayerContext& ctx, bool is_moe, const Tensor& x, Tensor* aux_loss, FfnCache* cache);
// daux: d(total loss)/d(aux loss).
Tensor ffn_backward(const LayerContext& ctx, const FfnCache& cache, const Tensor& dy, double daux, TensorMap& grads);

}  // namespace hsa

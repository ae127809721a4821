#include "model/ffn_layer.h"

#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"
#include "ops/swiglu.h"

namespace hsa {

namespace {
ops::MoeWeights moe_weights(const LayerContext& ctx) {
  ops::MoeWeights w;
  w.router = ctx.param("moe.router.weight");
  w.w_gate = ctx.param("moe.w_gate");
  w.w_up = ctx.param("moe.w_up");
  w.w_down = ctx.param("moe.w_down");
  if (ctx.has("moe.shared_gate")) {
    w.shared_gate = ctx.param("moe.shared_gate");
    w.shared_up = ctx.param("moe.shared_up");
    w.shared_down = ctx.param("moe.shared_down");
  }
  return w;
}

ops::MoeParams moe_params(const ModelConfig& c) { return ops::MoeParams{c.num_experts_per_tok, c.router_aux_loss_coef}; }
}  // namespace

Tensor ffn_forward(const LayerContext& ctx, bool is_moe, const Tensor& x, Tensor* aux_loss, FfnCache* cache) {
  const ModelConfig& c = ctx.config;
  auto norm = ops::rmsnorm_forward(x, ctx.param("ffn_norm.weight"), c.rms_norm_eps);
  FfnCache local;
  FfnCache& fc = cache ? *cache : local;
  fc.x = x, fc.xn = norm.y, fc.x_rstd = norm.rstd, fc.is_moe = is_moe;
  if (is_moe) {
    int64_t rows = x.numel() / c.hidden_size;
    fc.moe = ops::moe_forward(norm.y.view({rows, c.hidden_size}), moe_weights(ctx), moe_params(c));
    if (aux_loss) ops::add_(*aux_loss, fc.moe.aux_loss);
    return fc.moe.y.view(x.shape());
  }
  fc.gate = ops::linear_forward(norm.y, ctx.param("ffn.gate_proj.weight"));
  fc.up = ops::linear_forward(norm.y, ctx.param("ffn.up_proj.weight"));
  fc.hidden = ops::swiglu_forward(fc.gate, fc.up);
  return ops::linear_forward(fc.hidden, ctx.param("ffn.down_proj.weight"));
}

Tensor ffn_backward(const LayerContext& ctx, const FfnCache& fc, const Tensor& dy, double daux, TensorMap& grads) {
  const ModelConfig& c = ctx.config;
  Tensor dxn;
  if (fc.is_moe) {
    int64_t rows = fc.x.numel() / c.hidden_size;
    ops::MoeWeights w = moe_weights(ctx);
    ops::MoeGrads g = ops::moe_backward(dy.contiguous().view({rows, c.hidden_size}), daux,
                                        fc.xn.view({rows, c.hidden_size}), w, moe_params(c), fc.moe);
    accumulate_grad(grads, ctx.name("moe.router.weight"), g.dw.router);
    accumulate_grad(grads, ctx.name("moe.w_gate"), g.dw.w_gate);
    accumulate_grad(grads, ctx.name("moe.w_up"), g.dw.w_up);
    accumulate_grad(grads, ctx.name("moe.w_down"), g.dw.w_down);
    if (w.shared_gate.defined()) {
      accumulate_grad(grads, ctx.name("moe.shared_gate"), g.dw.shared_gate);
      accumulate_grad(grads, ctx.name("moe.shared_up"), g.dw.shared_up);
      accumulate_grad(grads, ctx.name("moe.shared_down"), g.dw.shared_down);
    }
    dxn = g.dx.view(fc.x.shape());
  } else {
    auto down = ops::linear_backward(dy, fc.hidden, ctx.param("ffn.down_proj.weight"));
    accumulate_grad(grads, ctx.name("ffn.down_proj.weight"), down.dw);
    auto sg = ops::swiglu_backward(down.dx, fc.gate, fc.up);
    auto gp = ops::linear_backward(sg.dgate, fc.xn, ctx.param("ffn.gate_proj.weight"));
    auto up = ops::linear_backward(sg.dup, fc.xn, ctx.param("ffn.up_proj.weight"));
    accumulate_grad(grads, ctx.name("ffn.gate_proj.weight"), gp.dw);
    accumulate_grad(grads, ctx.name("ffn.up_proj.weight"), up.dw);
    dxn = gp.dx;
    ops::add_(dxn, up.dx);
  }
  auto ng = ops::rmsnorm_backward(dxn, fc.x, ctx.param("ffn_norm.weight"), fc.x_rstd);
  accumulate_grad(grads, ctx.name("ffn_norm.weight"), ng.dweight);
  return ng.dx;
}

}  // namespace hsa

#include "model/optional_norm.h"

#include "ops/rmsnorm.h"

namespace hsa {

OptionalNorm optional_rmsnorm(const LayerContext& ctx, const Tensor& x, const std::string& weight, bool on) {
  if (!on) return {x, Tensor()};
  auto n = ops::rmsnorm_forward(x, ctx.param(weight), ctx.config.rms_norm_eps);
  return {n.y, n.rstd};
}

Tensor optional_rmsnorm_backward(const LayerContext& ctx, const Tensor& dy, const Tensor& x, const Tensor& rstd,
                                 const std::string& weight, bool on, TensorMap& grads) {
  if (!on) return dy;
  auto g = ops::rmsnorm_backward(dy, x, ctx.param(weight), rstd);
  accumulate_grad(grads, ctx.name(weight), g.dweight);
  return g.dx;
}

}  // namespace hsa

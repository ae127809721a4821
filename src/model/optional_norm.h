// An RMSNorm that a config option switches on over a projection's output: the qk-norms (per head over queries
// and keys) and the retrieval norm (per retrieval head over the retrieval query and the landmarks). Off, it is
// the identity; on, its forward keeps the 1/rms the backward needs. One place for the on/off logic of every such
// norm (docs/architecture.md, the layer stack).
#pragma once
#include "model/layer_context.h"

#include <string>

namespace hsa {

struct OptionalNorm {
  Tensor y;     // the normed x, or x itself when off
  Tensor rstd;  // 1/rms of each normed row; undefined when off
};

// x [..., d]; `weight` names the norm's [d] parameter under ctx's prefix (e.g. "hsa.retrieval_norm.weight").
OptionalNorm optional_rmsnorm(const LayerContext& ctx, const Tensor& x, const std::string& weight, bool on);

// The gradient into x from dy, adding the weight's gradient to `grads` when on; dy itself when off.
Tensor optional_rmsnorm_backward(const LayerContext& ctx, const Tensor& dy, const Tensor& x, const Tensor& rstd,
                                 const std::string& weight, bool on, TensorMap& grads);

}  // namespace hsa

// Mixture-of-Experts feed-forward (docs/architecture.md §2.7): softmax router, top-k routed SwiGLU experts with gates
// renormalised over the chosen ones, optional shared experts that every token uses, load-balancing loss.
//   x, y, dy, dx [N, dm]; router [E, dm]; w_gate, w_up [E, F, dm]; w_down [E, dm, F];
//   shared_gate, shared_up [NS, Fs, dm]; shared_down [NS, dm, Fs] (all three undefined: no shared experts);
//   probs [N, E]; experts i32 [N, k]; gates [N, k].
// Devices: cpu (f32, f64, bf16 computed in f32) and cuda (f32, bf16 storage with f32 accumulation; cuda/moe.h).
// On cuda dy must have x's dtype, and the routing in fwd.experts is validated on the device.
// y[t] = sum_j gates[t, j] * expert_{experts[t, j]}(x[t]) + sum_s shared_s(x[t]),
//   expert(x) = (silu(x W_gate^T) * (x W_up^T)) W_down^T.
// aux_loss = coef * E * sum_e f_e * P_e (Switch/GShard): f_e = share of the N*k routing choices that picked e
// (a count, not differentiated), P_e = mean_t probs[t, e] (differentiated into the router).
#pragma once
#include <hsa/tensor.h>

#include <vector>

namespace hsa::ops {

struct MoeWeights {
  Tensor router;                  // [E, dm]
  Tensor w_gate, w_up;            // [E, F, dm]
  Tensor w_down;                  // [E, dm, F]
  Tensor shared_gate, shared_up;  // [NS, Fs, dm], or undefined (NS = 0)
  Tensor shared_down;             // [NS, dm, Fs], or undefined
};

struct MoeParams {
  int64_t topk;  // experts per token, 1..E
  double aux_loss_coef = 0.01;
};

struct MoeOut {
  Tensor y;  // [N, dm], dtype of x
  // coef * load-balancing loss: f64 [1] on x's device, so that the op never waits for the device (read it with
  // aux_loss.to(Device::cpu).item(), a device->host copy on cuda).
  Tensor aux_loss;
  // For backward (compute dtype: f32 for bf16 inputs).
  Tensor probs;    // [N, E] router softmax
  Tensor experts;  // i32 [N, k], chosen experts, highest logit first (ties -> lower index)
  Tensor gates;    // [N, k], renormalised probs of the chosen experts
  // saved[0], saved[1]: the pre-activations x W_gate^T and x W_up^T of every (token, expert) pair, flat: routed
  // experts in index order, each over its tokens ascending (rows of F), then the shared experts over all N
  // tokens (rows of Fs). [N*k*F + NS*N*Fs]. Same layout on both devices; dtype: the compute dtype on the cpu, x's
  // own dtype on cuda (bf16 stays bf16 there: these are the largest tensors the op keeps).
  std::vector<Tensor> saved;
};

MoeOut moe_forward(const Tensor& x, const MoeWeights& w, const MoeParams& p);

struct MoeGrads {
  Tensor dx;      // [N, dm]
  MoeWeights dw;  // the same fields defined as in w, same shapes and dtypes
};

// dy = dloss/dy; daux = dloss/d(aux_loss) (1 when the aux loss is added to the training loss as is).
MoeGrads moe_backward(const Tensor& dy, double daux, const Tensor& x, const MoeWeights& w, const MoeParams& p,
                      const MoeOut& fwd);

}  // namespace hsa::ops

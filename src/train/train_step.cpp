#include "train/train_step.h"

#include "ops/cross_entropy.h"

#include <cmath>

namespace hsa {

StepLoss run_batch(const Model& model, const Batch& batch, TensorMap* grads, double grad_scale) {
  InferenceState state = model.new_state();
  ForwardCache cache;
  StepLoss r;
  Tensor aux;
  Tensor logits = model.forward(batch.inputs, state, &aux, grads ? &cache : nullptr);
  int64_t V = model.config().vocab_size;
  Tensor flat = logits.view({-1, V});
  Tensor targets = batch.targets.to(model.device()).contiguous().view({-1});
  auto ce = ops::cross_entropy_forward(flat, targets);  // its loss comes to the host: the device is idle after it
  r.loss = ce.loss;
  r.aux = aux.item();  // so reading the aux loss (a device->host copy on cuda) waits for nothing
  r.count = ce.count;
  if (grads) {
    Tensor dlogits = ops::cross_entropy_backward(grad_scale, flat, targets, ce.lse).view(logits.shape());
    TensorMap g = model.backward(dlogits, grad_scale, cache);
    for (auto& [name, t] : g) accumulate_grad(*grads, name, t);
  }
  return r;
}

double apply_update(Model& model, TensorMap& master, AdamW& adam, TensorMap& grads, double lr, double clip) {
  double grad_norm = clip_grad_norm(grads, clip);
  if (!std::isfinite(grad_norm)) return grad_norm;  // no update: the caller decides whether to go on
  adam.step(master, grads, lr);
  // In f32 the model computes with the master tensors themselves (updated in place above).
  if (model.dtype() != DType::f32) model.mutable_params() = convert(master, model.device(), model.dtype());
  return grad_norm;
}

}  // namespace hsa

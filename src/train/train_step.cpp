#include "train/train_step.h"

#include "ops/cross_entropy.h"
#include "ops/elementwise.h"

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
  r.aux = aux.item();  // so reading the aux loss (a device->host copy on cuda) waits for nothing
  // The loss is c_all x (mean over every target) + c_answer x (mean over the answer tokens). Answer weighting: the
  // answer tokens count answer_weight times in one mean over the weighted count. Answer share: the answers' mean
  // takes a fixed share of the loss however few answer tokens the batch holds (train/batches.h says why).
  const bool mixed = batch.answer_targets.defined() && batch.task_rows > 0 &&
                     (batch.answer_share > 0.0 || batch.answer_weight != 1.0);
  Tensor answer_targets;
  ops::CrossEntropyOut answers{0.0, 0, Tensor()};
  if (mixed) {
    answer_targets = batch.answer_targets.to(model.device()).contiguous().view({-1});
    answers = ops::cross_entropy_forward(flat, answer_targets);
  }
  double c_all = 1.0, c_answer = 0.0;
  if (answers.count > 0 && batch.answer_share > 0.0) {
    c_all = 1.0 - batch.answer_share;
    c_answer = batch.answer_share;
  } else if (answers.count > 0) {
    const double extra = batch.answer_weight - 1.0;
    const double denominator = double(ce.count) + extra * double(answers.count);
    c_all = double(ce.count) / denominator;
    c_answer = extra * double(answers.count) / denominator;
  }
  r.loss = ce.count > 0 || answers.count > 0 ? c_all * ce.loss + c_answer * answers.loss : 0.0;
  r.count = ce.count;
  if (grads) {
    // Each backward divides by its own count, so the coefficients apply to the means as they stand.
    Tensor dlogits = ops::cross_entropy_backward(grad_scale * c_all, flat, targets, ce.lse);
    if (c_answer != 0.0)
      ops::add_(dlogits, ops::cross_entropy_backward(grad_scale * c_answer, flat, answer_targets, answers.lse));
    TensorMap g = model.backward(dlogits.view(logits.shape()), grad_scale, cache);
    for (auto& [name, t] : g) accumulate_grad(*grads, name, t);
  }
  return r;
}

// Mean cross-entropy of the answer tokens alone (eval of task rows); count 0 when the batch has none.
StepLoss answer_loss(const Model& model, const Batch& batch) {
  StepLoss r;
  if (!batch.answer_targets.defined()) return r;
  InferenceState state = model.new_state();
  Tensor logits = model.forward(batch.inputs, state, nullptr, nullptr);
  Tensor flat = logits.view({-1, model.config().vocab_size});
  auto ce = ops::cross_entropy_forward(flat, batch.answer_targets.to(model.device()).contiguous().view({-1}));
  r.loss = ce.loss;
  r.count = ce.count;
  return r;
}

double apply_update(Model& model, TensorMap& master, AdamW& adam, TensorMap& grads, double lr, double clip) {
  double grad_norm = clip_grad_norm(grads, clip);
  if (!std::isfinite(grad_norm)) return grad_norm;  // no update: the caller decides whether to go on
  adam.step(master, grads, lr);
  refresh_compute_copy(model, master);
  return grad_norm;
}

void refresh_compute_copy(Model& model, const TensorMap& master) {
  // In f32 the model computes with the master tensors themselves (updated in place).
  if (model.dtype() != DType::f32) model.mutable_params() = convert(master, model.device(), model.dtype());
}

}  // namespace hsa

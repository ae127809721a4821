// One optimizer step, shared by `hsa train` and `hsa bench train`: forward + cross-entropy + backward of
// micro-batches (gradients accumulated), global-norm clipping, AdamW on the f32 master weights, and the refresh
// of the model's compute copy when it computes in another dtype (bf16).
#pragma once
#include "model/model.h"
#include "train/batches.h"
#include "train/optimizer.h"

namespace hsa {

struct StepLoss {
  double loss = 0;  // cross-entropy (mean over counted targets, answer tokens weighted)
  double aux = 0;   // MoE load-balancing loss
  int64_t count = 0;
};

// Forward (and, with grads, backward) of one batch; gradients are scaled by grad_scale and accumulated.
// With batch.answer_share > 0 the loss is (1 - share) x the mean over every target + share x the mean over the
// answer tokens (batch.answer_targets); else, with batch.answer_weight != 1, it is the weighted mean in which the
// answer tokens count answer_weight times.
StepLoss run_batch(const Model& model, const Batch& batch, TensorMap* grads, double grad_scale);

// Forward only: the mean cross-entropy over the batch's answer tokens (count 0 when it has none).
StepLoss answer_loss(const Model& model, const Batch& batch);

// Clips `grads` to `clip` (0: off), updates `master` with AdamW at `lr`, and, when the model computes in another
// dtype than the f32 master, refreshes its parameters from it. Returns the gradient norm before clipping; when it
// is not finite, nothing is updated.
double apply_update(Model& model, TensorMap& master, AdamW& adam, TensorMap& grads, double lr, double clip);

// After an update of `master`: a model computing in another dtype than f32 takes fresh parameters from it (in f32
// the model computes with the master tensors themselves).
void refresh_compute_copy(Model& model, const TensorMap& master);

}  // namespace hsa

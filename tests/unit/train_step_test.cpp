// The answer-weighted loss of a mixture batch: answer tokens count answer_weight times in the mean, and its
// gradient is the same weighted mix of the plain and the answer-only gradients.
#include "model/param_spec.h"
#include "train/train_step.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace hsa;

namespace {

std::vector<float> flat(const TensorMap& grads) {
  std::vector<float> out;
  for (const auto& [name, t] : grads) {
    Tensor c = t.contiguous();
    const float* p = c.data<float>();
    out.insert(out.end(), p, p + c.numel());
  }
  return out;
}

int64_t counted(const Tensor& targets) {
  const int32_t* p = targets.data<int32_t>();
  int64_t n = 0;
  for (int64_t i = 0; i < targets.numel(); ++i) n += p[i] != kIgnoreIndex;
  return n;
}

Model micro_model() {
  ModelConfig config = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  return Model(config, init_parameters(config, 3, DType::f32));
}

// One batch of two task rows (pass key, key-value lookup; train phrasings) of 200 tokens.
Batch two_task_rows(double answer_weight, double answer_share) {
  TaskRows rows;
  rows.kinds = {TaskKind::passkey, TaskKind::kv_lookup};
  rows.phrasings = Phrasings::train;
  rows.answer_weight = answer_weight;
  rows.answer_share = answer_share;
  return make_mixture_batches(nullptr, rows, 1.0, 2, 200, 8)->next();
}

// The two losses a mixed batch's loss combines, with their gradients: every target unweighted, and the answer
// tokens alone.
std::pair<StepLoss, StepLoss> plain_and_answer_losses(const Model& model, const Batch& mixed, TensorMap& g_plain,
                                                      TensorMap& g_answers) {
  Batch plain = mixed;
  plain.answer_weight = 1.0;
  plain.answer_share = 0.0;
  Batch answers = plain;
  answers.targets = mixed.answer_targets;
  return {run_batch(model, plain, &g_plain, 1.0), run_batch(model, answers, &g_answers, 1.0)};
}

// `got` equals c_plain x `plain` + c_answers x `answers`, tensor by tensor (in map order), to f32 rounding.
void expect_gradient_mix(const TensorMap& got, const TensorMap& plain, double c_plain, const TensorMap& answers,
                         double c_answers) {
  std::vector<float> g = flat(got), p = flat(plain), a = flat(answers);
  ASSERT_EQ(g.size(), p.size());
  ASSERT_EQ(a.size(), p.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double want = c_plain * p[i] + c_answers * a[i];
    worst = std::max(worst, std::abs(g[i] - want));
    scale = std::max(scale, std::abs(want));
  }
  EXPECT_LT(worst, 1e-5 * std::max(1.0, scale));
}

}  // namespace

TEST(AnswerWeight, LossAndGradientAreTheWeightedMix) {
  const Model model = micro_model();
  Batch weighted = two_task_rows(5.0, 0.0);
  ASSERT_EQ(weighted.answer_weight, 5.0);

  const double n = double(counted(weighted.targets)), na = double(counted(weighted.answer_targets));
  ASSERT_GT(na, 0);

  TensorMap g_weighted, g_plain, g_answers;
  const StepLoss lw = run_batch(model, weighted, &g_weighted, 1.0);
  const auto [lp, la] = plain_and_answer_losses(model, weighted, g_plain, g_answers);
  EXPECT_NEAR(answer_loss(model, weighted).loss, la.loss, 1e-9);
  const double denominator = n + 4.0 * na;
  EXPECT_NEAR(lw.loss, (n * lp.loss + 4.0 * na * la.loss) / denominator, 1e-6);
  EXPECT_GT(std::abs(lw.loss - lp.loss), 1e-4);  // the weighting changes something

  expect_gradient_mix(g_weighted, g_plain, n / denominator, g_answers, 4.0 * na / denominator);
}

// With an answer share the answers' mean takes that share of the loss however few answer tokens there are; the
// share replaces the weight.
TEST(AnswerShare, LossAndGradientAreTheSharedMix) {
  const Model model = micro_model();
  Batch shared = two_task_rows(5.0, 0.3);
  ASSERT_EQ(shared.answer_share, 0.3);

  ASSERT_GT(counted(shared.answer_targets), 0);

  TensorMap g_shared, g_plain, g_answers;
  const StepLoss ls = run_batch(model, shared, &g_shared, 1.0);
  const auto [lp, la] = plain_and_answer_losses(model, shared, g_plain, g_answers);
  EXPECT_NEAR(ls.loss, 0.7 * lp.loss + 0.3 * la.loss, 1e-6);
  EXPECT_GT(std::abs(ls.loss - lp.loss), 1e-4);

  expect_gradient_mix(g_shared, g_plain, 0.7, g_answers, 0.3);

  // Rows without answers (a language-model-only micro-batch) keep the plain loss.
  Batch none = shared;
  none.task_rows = 0;
  EXPECT_NEAR(run_batch(model, none, nullptr, 0).loss, lp.loss, 1e-9);
}

// The whole model on the GPU against the CPU reference: logits and every parameter gradient (f32, and bf16
// within its tolerance), and incremental decoding on the GPU equal to the GPU's full forward.
#include "gpu/parity.h"
#include "infer/session.h"
#include "model/model.h"
#include "model/param_spec.h"
#include "ops/cross_entropy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

using namespace hsa;
using namespace hsa::testing;

namespace {

ModelConfig tiny() { return ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/tiny.json"); }
ModelConfig tiny_encoder() {
  return ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/tiny-encoder.json");
}

// The chunk encoder with the retrieval norm (query and landmarks RMS-normalised per retrieval head).
ModelConfig tiny_retrieval_norm() {
  ModelConfig c = tiny_encoder();
  c.hsa_retrieval_norm = true;
  return c;
}

Tensor random_ids(int64_t batch, int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(batch * n);
  for (auto& t : ids) t = static_cast<int32_t>(rng.below(256));
  return Tensor::from_i32(ids, {batch, n});
}

struct Pass {
  Tensor logits;
  TensorMap grads;
  double aux = 0;
};

// Forward, mean cross-entropy against the next token, backward.
Pass forward_backward(const Model& model, const Tensor& ids) {
  InferenceState state = model.new_state();
  ForwardCache cache;
  Pass p;
  Tensor aux;
  p.logits = model.forward(ids, state, &aux, &cache);
  EXPECT_EQ(aux.device(), model.device());
  p.aux = aux.item();
  int64_t V = model.config().vocab_size;
  Tensor flat = p.logits.view({-1, V});
  Tensor targets = ids.to(model.device()).contiguous().view({-1});  // predicting the token itself: any target works
  auto ce = ops::cross_entropy_forward(flat, targets);
  Tensor dlogits = ops::cross_entropy_backward(1.0, flat, targets, ce.lse).view(p.logits.shape());
  p.grads = model.backward(dlogits, 1.0, cache);
  return p;
}

// The chunk encoder's initial [CLS] row (std 1) outweighs everything its one block adds, so at init every chunk's
// landmark is nearly the same vector (mean pairwise cosine 0.9999 for tiny-encoder). The retrieval parameters'
// gradients are then differences far below bf16's resolution (0.4%) and a bf16 GPU run cannot match them. With the
// row at zero the landmarks differ as a trained model's do (mean cosine 0.18), which is what a bf16 parity test
// can measure; the f32 tests keep the default init.
TensorMap with_distinct_landmarks(TensorMap params) {
  Tensor& cls = params.at("memory.cls");
  std::fill(cls.data<float>(), cls.data<float>() + cls.numel(), 0.0f);
  return params;
}

void expect_model_parity(const ModelConfig& config, const TensorMap& params, DType gpu_dtype, double logits_tol,
                         double grad_tol) {
  Model cpu_model(config, params), gpu_model(config, convert(params, Device::cuda, gpu_dtype));
  // Several chunks and two windows of the largest sliding window; a length that is no multiple of anything.
  Tensor ids = random_ids(2, 6 * config.chunk_size + 2 * config.sliding_window + 13, 3);
  Pass want = forward_backward(cpu_model, ids), got = forward_backward(gpu_model, ids);
  EXPECT_LT(relative_error(host(got.logits).to(DType::f32), want.logits), logits_tol) << "logits";
  EXPECT_NEAR(got.aux, want.aux, 1e-2 * std::abs(want.aux) + 1e-7) << "aux loss";
  ASSERT_EQ(got.grads.size(), want.grads.size());
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, g] : want.grads) {
    ASSERT_TRUE(got.grads.count(name)) << name;
    double err = relative_error(host(got.grads.at(name)).to(DType::f32), g);
    EXPECT_LT(err, grad_tol) << name;
    if (err > worst) worst = err, worst_name = name;
  }
  // The margins, for whoever next sets these tolerances.
  std::printf("logits %.4g, worst gradient %.4g (%s)\n",
              relative_error(host(got.logits).to(DType::f32), want.logits), worst, worst_name.c_str());
}

void expect_model_parity(const ModelConfig& config, DType gpu_dtype, double logits_tol, double grad_tol) {
  expect_model_parity(config, init_parameters(config, 7, DType::f32), gpu_dtype, logits_tol, grad_tol);
}

void expect_incremental_equals_full(const ModelConfig& config) {
  Model model(config, convert(init_parameters(config, 9, DType::f32), Device::cuda, DType::f32));
  int64_t n = 4 * config.chunk_size + 2 * config.sliding_window + 21;
  Tensor ids = random_ids(1, n, 5);
  InferenceState state = model.new_state();
  Tensor reference = host(model.forward(ids, state).select(0, 0).contiguous());
  std::vector<int32_t> tokens(ids.data<int32_t>(), ids.data<int32_t>() + n);
  for (int64_t segment : {int64_t(1), int64_t(7), config.chunk_size + 5}) {
    Session session(model);
    std::vector<double> all;
    for (int64_t pos = 0; pos < n; pos += segment) {
      int64_t len = std::min(segment, n - pos);
      auto v = session.feed(std::span<const int32_t>(tokens.data() + pos, len)).to_vector();
      all.insert(all.end(), v.begin(), v.end());
    }
    Tensor got = Tensor::from_values(all, reference.shape());
    EXPECT_LT(max_abs_diff(got, reference), 1e-4) << "segments of " << segment;
  }
}

}  // namespace

TEST(ModelParity, F32LogitsAndGradientsMatchTheCpu) {
  HSA_REQUIRE_GPU();
  expect_model_parity(tiny(), DType::f32, 1e-4, 1e-3);
}

TEST(ModelParity, Bf16LogitsAndGradientsAreWithinBf16Tolerance) {
  HSA_REQUIRE_GPU();
  // bf16 rounds every activation (8 bits of mantissa) through ~20 ops per layer. Measured on an H200: logits
  // within 3e-2; the worst parameter gradients (summed over every token) at 0.107 and 0.109 in norm.
  expect_model_parity(tiny(), DType::bf16, 3e-2, 0.15);
}

// The chunk encoder (block attention, [CLS] gather) on the GPU.
TEST(ModelParity, ChunkEncoderF32LogitsAndGradientsMatchTheCpu) {
  HSA_REQUIRE_GPU();
  expect_model_parity(tiny_encoder(), DType::f32, 1e-4, 1e-3);
}

// With distinct landmarks (with_distinct_landmarks) and every visible chunk selected, so that no near-tie between
// chunk scores is broken differently in bf16 than in f32. With the default init and the top-4 the retrieval
// parameters' gradients differed by 0.33-0.43; with the top-16 alone by 0.24-0.29 (an H200, 2026-12-03).
TEST(ModelParity, ChunkEncoderBf16LogitsAndGradientsAreWithinBf16Tolerance) {
  HSA_REQUIRE_GPU();
  ModelConfig config = tiny_encoder();
  config.chunk_topk = 16;  // the test sequence has 14 chunks
  expect_model_parity(config, with_distinct_landmarks(init_parameters(config, 7, DType::f32)), DType::bf16, 3e-2,
                      0.15);
}

// The landmark from the mean of the chunk's token outputs (chunk_encoder_landmark "mean").
TEST(ModelParity, MeanOfTokensLandmarkF32LogitsAndGradientsMatchTheCpu) {
  HSA_REQUIRE_GPU();
  ModelConfig config = tiny_encoder();
  config.chunk_encoder_landmark = "mean";
  expect_model_parity(config, DType::f32, 1e-4, 1e-3);
}

TEST(ModelParity, IncrementalDecodingOnTheGpuEqualsTheFullForward) {
  HSA_REQUIRE_GPU();
  expect_incremental_equals_full(tiny());
}

TEST(ModelParity, IncrementalDecodingWithChunkEncoderOnTheGpuEqualsTheFullForward) {
  HSA_REQUIRE_GPU();
  expect_incremental_equals_full(tiny_encoder());
}

// The retrieval norm on the GPU (rmsnorm over the retrieval heads of the query and the landmarks).
TEST(ModelParity, RetrievalNormF32LogitsAndGradientsMatchTheCpu) {
  HSA_REQUIRE_GPU();
  expect_model_parity(tiny_retrieval_norm(), DType::f32, 1e-4, 1e-3);
}

// Distinct landmarks and every chunk selected, as for the encoder above. With the default init and the top-4:
// logits 0.050 and the retrieval parameters' gradients 0.37-0.51 off (an H200, 2026-12-03).
TEST(ModelParity, RetrievalNormBf16LogitsAndGradientsAreWithinBf16Tolerance) {
  HSA_REQUIRE_GPU();
  ModelConfig config = tiny_retrieval_norm();
  config.chunk_topk = 16;
  expect_model_parity(config, with_distinct_landmarks(init_parameters(config, 7, DType::f32)), DType::bf16, 3e-2,
                      0.15);
}

TEST(ModelParity, IncrementalDecodingWithRetrievalNormOnTheGpuEqualsTheFullForward) {
  HSA_REQUIRE_GPU();
  expect_incremental_equals_full(tiny_retrieval_norm());
}

// The whole model's backward against finite differences in f64, on the micro config with a sequence long
// enough for retrieval (several chunks) and windows, MoE and dense layers, tied embeddings.
#include "common/gradcheck.h"
#include "model/model.h"
#include "model/param_spec.h"
#include "ops/elementwise.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

namespace {

void check_model_gradients(ModelConfig config, uint64_t seed) {
  TensorMap params = init_parameters(config, seed, DType::f64);
  for (auto& [name, t] : params)  // larger weights than the init, so every path carries signal
    if (t.ndim() > 1) t = ops::scale(t, 4.0);
  Model model(config, params);
  int64_t L = 5 * config.chunk_size + 3;
  Rng rng(seed);
  std::vector<int32_t> ids(L);
  for (auto& t : ids) t = static_cast<int32_t>(rng.below(config.vocab_size));
  Tensor input = Tensor::from_i32(ids, {1, L});
  Tensor r = randn64({1, L, config.vocab_size}, seed + 1);
  const double daux = 0.5;
  auto loss = [&] {
    InferenceState state = model.new_state();
    Tensor aux;
    Tensor logits = model.forward(input, state, &aux);
    return dot(logits, r) + daux * aux.item();
  };
  InferenceState state = model.new_state();
  ForwardCache cache;
  Tensor aux;
  model.forward(input, state, &aux, &cache);
  TensorMap grads = model.backward(r, daux, cache);
  std::vector<GradInput> inputs;
  for (auto& [name, t] : model.mutable_params()) {
    ASSERT_TRUE(grads.count(name)) << "no gradient for " << name;
    inputs.push_back({name, &t, grads.at(name)});
  }
  GradcheckOptions options;
  options.max_elements = 6;
  options.rtol = 1e-4;
  options.atol = 1e-6;
  expect_gradients_match(loss, inputs, options);
}

}  // namespace

TEST(ModelGradcheck, MicroConfig) {
  ModelConfig config = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  check_model_gradients(config, 21);
}

TEST(ModelGradcheck, BypassResidualStickBreakingWindowMask) {
  ModelConfig config = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  config.hsa_bypass_residual = true;
  config.chunk_weighting = "stick_breaking";
  config.hsa_window_mask = true;
  check_model_gradients(config, 22);
}

// The chunk encoder: one block, then two (the second block's gradient flows through the first), with the HSA
// qk-norm off in the two-block case so both key paths are covered.
TEST(ModelGradcheck, ChunkEncoderOneLayer) {
  ModelConfig config = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  config.chunk_encoder_layers = 1;
  check_model_gradients(config, 23);
}

TEST(ModelGradcheck, ChunkEncoderTwoLayers) {
  ModelConfig config = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  config.chunk_encoder_layers = 2;
  config.hsa_qk_norm = false;
  config.qk_norm = false;
  check_model_gradients(config, 24);
}

// The landmark from the mean of the chunk's token outputs: its gradient reaches every token output, and [CLS] only
// through the tokens that attend to it.
TEST(ModelGradcheck, ChunkEncoderMeanOfTokensLandmark) {
  ModelConfig config = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  config.chunk_encoder_layers = 1;
  config.chunk_encoder_landmark = "mean";
  check_model_gradients(config, 27);
}

// The retrieval norm (query and landmarks RMS-normalised per retrieval head): mean pooling, then the chunk encoder.
TEST(ModelGradcheck, RetrievalNormMeanPooling) {
  ModelConfig config = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  config.hsa_retrieval_norm = true;
  check_model_gradients(config, 25);
}

TEST(ModelGradcheck, RetrievalNormChunkEncoder) {
  ModelConfig config = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  config.hsa_retrieval_norm = true;
  config.chunk_encoder_layers = 1;
  check_model_gradients(config, 26);
}

// hsa_retrieval_norm bounds the retrieval scores: the query and the landmarks are RMS-normalised per retrieval
// head, so scaling their projections (what a long training does to them without the norm, until the chunk
// softmax is one-hot) leaves the selected chunks and their weights unchanged.
#include "model/model.h"
#include "model/param_spec.h"
#include <hsa/random.h>
#include "ops/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fmt/format.h>

using namespace hsa;

namespace {

struct Selection {
  std::vector<double> indices, weights;  // every HSA layer's, concatenated
};

Selection selection_of(const ModelConfig& config, TensorMap params, double projection_scale) {
  for (auto& [name, t] : params)
    if (name.find("retrieval_proj") != std::string::npos || name.find("landmark_proj") != std::string::npos)
      t = ops::scale(t, projection_scale);
  Model model(config, params);
  const int64_t L = 6 * config.chunk_size + 5;
  Rng rng(5);
  std::vector<int32_t> ids(static_cast<size_t>(L));
  for (auto& t : ids) t = static_cast<int32_t>(rng.below(config.vocab_size));
  InferenceState state = model.new_state();
  ForwardCache cache;
  Tensor aux;
  model.forward(Tensor::from_i32(ids, {1, L}), state, &aux, &cache);
  Selection s;
  for (int64_t i = 0; i < config.num_layers(); ++i) {
    if (!config.is_hsa_layer(i)) continue;
    const HsaCache& h = cache.hsa[static_cast<size_t>(i)];
    EXPECT_FALSE(h.empty);
    for (double v : h.retrieval.indices.contiguous().to_vector()) s.indices.push_back(v);
    for (double v : h.retrieval.weights.contiguous().to_vector()) s.weights.push_back(v);
  }
  return s;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t k = 0; k < std::min(a.size(), b.size()); ++k) m = std::max(m, std::abs(a[k] - b[k]));
  return m;
}

void check_scale_invariance(ModelConfig config) {
  config.hsa_retrieval_norm = true;
  config.rms_norm_eps = 1e-12;  // the norm's eps is the only thing that tells the two scales apart
  const TensorMap params = init_parameters(config, 11, DType::f64);
  const Selection base = selection_of(config, params, 1.0), scaled = selection_of(config, params, 100.0);
  EXPECT_EQ(base.indices, scaled.indices);
  EXPECT_LT(max_abs_diff(base.weights, scaled.weights), 1e-6);

  // Without the norm the same scaling multiplies the scores by 10^4: the weights collapse towards one-hot.
  config.hsa_retrieval_norm = false;
  TensorMap plain;
  for (const ParamSpec& s : model_param_specs(config)) plain[s.name] = params.at(s.name);
  const Selection plain_base = selection_of(config, plain, 1.0), plain_scaled = selection_of(config, plain, 100.0);
  EXPECT_GT(max_abs_diff(plain_base.weights, plain_scaled.weights), 0.1);
}

}  // namespace

TEST(RetrievalNorm, ScalingTheProjectionsLeavesTheSelectionUnchanged) {
  check_scale_invariance(ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/tiny.json"));
}

TEST(RetrievalNorm, ScalingTheProjectionsLeavesTheSelectionUnchangedWithChunkEncoder) {
  check_scale_invariance(ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/tiny-encoder.json"));
}

// The norms' weights are parameters of every HSA layer and of the memory builder, shaped [dr/H], last in the
// specs: turning the option on leaves every other parameter's initial value unchanged.
TEST(RetrievalNorm, ParametersAreAddedLastAndOthersKeepTheirInit) {
  ModelConfig off = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/tiny-encoder.json");
  ModelConfig on = off;
  on.hsa_retrieval_norm = true;
  const std::vector<ParamSpec> a = model_param_specs(off), b = model_param_specs(on);
  int64_t hsa_layers = 0;
  for (int64_t i = 0; i < on.num_layers(); ++i) hsa_layers += on.is_hsa_layer(i) ? 1 : 0;
  ASSERT_EQ(b.size(), a.size() + static_cast<size_t>(hsa_layers) + 1);
  for (size_t k = 0; k < a.size(); ++k) EXPECT_EQ(a[k].name, b[k].name);
  const int64_t head = on.retrieval_dim / on.num_key_value_heads;
  for (size_t k = a.size(); k < b.size(); ++k) {
    EXPECT_EQ(b[k].shape, (Shape{head})) << b[k].name;
    EXPECT_EQ(b[k].init, ParamSpec::Init::ones) << b[k].name;
  }
  EXPECT_EQ(b.back().name, "memory.landmark_norm.weight");
  EXPECT_EQ(b[a.size()].name, fmt::format("layers.{}.hsa.retrieval_norm.weight", on.num_lower_layers));
  const TensorMap pa = init_parameters(off, 3), pb = init_parameters(on, 3);
  for (const auto& [name, t] : pa) EXPECT_EQ(t.to_vector(), pb.at(name).to_vector()) << name;
}

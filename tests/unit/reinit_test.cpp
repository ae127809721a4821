// --reinit: the named parameters take their fresh initial values, everything else keeps its trained values, and
// a name that matches nothing is refused.
#include "model/param_spec.h"
#include "train/reinit.h"

#include <hsa/error.h>

#include <gtest/gtest.h>

using namespace hsa;

namespace {

ModelConfig tiny() { return ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/tiny.json"); }

TEST(Reinit, NamedParametersTakeTheirInitialValuesAndTheRestAreKept) {
  const ModelConfig c = tiny();
  const TensorMap trained = init_parameters(c, 1);  // stands in for a trained model
  TensorMap params;
  for (const auto& [name, t] : trained) params[name] = t.clone();
  const std::vector<std::string> redrawn = reinitialise_parameters(params, c, {"retrieval_proj"}, 7);
  const TensorMap fresh = init_parameters(c, 7);
  ASSERT_FALSE(redrawn.empty());
  int64_t expected = 0;
  for (const auto& [name, t] : params) {
    const bool named = name.find("retrieval_proj") != std::string::npos;
    expected += named;
    const Tensor& want = named ? fresh.at(name) : trained.at(name);
    EXPECT_EQ(t.to_vector(), want.to_vector()) << name;
  }
  EXPECT_EQ(int64_t(redrawn.size()), expected);
  EXPECT_EQ(expected, c.num_upper_groups * c.group_layers);  // one retrieval projection per HSA layer
}

TEST(Reinit, KeepsDtypeAndRefusesANameThatMatchesNothing) {
  const ModelConfig c = tiny();
  TensorMap params = convert(init_parameters(c, 1), Device::cpu, DType::bf16);
  reinitialise_parameters(params, c, {"landmark_proj"}, 3);
  for (const auto& [name, t] : params) EXPECT_EQ(t.dtype(), DType::bf16) << name;
  EXPECT_THROW(reinitialise_parameters(params, c, {"no_such_weight"}, 3), Error);
  EXPECT_THROW(reinitialise_parameters(params, c, {""}, 3), Error);
  EXPECT_TRUE(reinitialise_parameters(params, c, {}, 3).empty());
}

}  // namespace

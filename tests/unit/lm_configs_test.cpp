// The language-model configs (configs/lm-*.json): they load, use the 8192-token tokenizer file, the
// HSA-UltraLong layout with 64-token chunks and top-8 retrieval, and have the sizes their names promise.
#include "model/config.h"
#include "model/param_spec.h"

#include <gtest/gtest.h>

using namespace hsa;

TEST(LmConfigs, LoadWithTheirPromisedSizes) {
  struct Expect {
    const char* name;
    double total_m_min, total_m_max, active_m_min, active_m_max;
  };
  for (const Expect& e : {Expect{"lm-20m", 18, 24, 18, 24}, Expect{"lm-40m", 36, 46, 36, 46},
                          Expect{"lm-40m-moe", 80, 110, 36, 46}, Expect{"lm-micro", 0.1, 2, 0.1, 2}}) {
    SCOPED_TRACE(e.name);
    const ModelConfig c = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/" + e.name + ".json");
    EXPECT_EQ(c.vocab_size, 8192);
    EXPECT_EQ(c.tokenizer, "tokenizer.json");
    EXPECT_GT(c.num_upper_groups, 0);
    if (std::string(e.name) != "lm-micro") {
      EXPECT_EQ(c.chunk_size, 64);
      EXPECT_EQ(c.chunk_topk, 8);
      EXPECT_EQ(c.num_lower_layers * 2, c.num_layers());  // lower half SWA, upper half HSA groups
    }
    const double total = double(count_parameters(model_param_specs(c))) / 1e6;
    const double active = double(active_parameters_per_token(c)) / 1e6;
    EXPECT_GE(total, e.total_m_min);
    EXPECT_LE(total, e.total_m_max);
    EXPECT_GE(active, e.active_m_min);
    EXPECT_LE(active, e.active_m_max);
  }
}

// Model FLOPs of a training step (model/flops.h), against hand-computed values on the micro config.
#include "model/flops.h"
#include "model/param_spec.h"

#include <gtest/gtest.h>

using namespace hsa;

TEST(TrainingFlops, MicroConfigAt24TokensByHand) {
  ModelConfig c = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  // micro: HQ*D = 2*16 = 32; layers: SWA (window 16), HSA block (window 8), SWA (16); chunk 8, top-2, d_r 16.
  TrainingFlops f = training_flops_per_token(c, 24);
  // Mean visible keys over t = 0..23: window 16 -> (1+..+16 + 8*16) / 24 = 11; window 8 -> (36 + 16*8) / 24.
  EXPECT_DOUBLE_EQ(f.swa, 3.0 * 4.0 * 32 * (11.0 + 164.0 / 24.0 + 11.0));
  // Complete earlier chunks t / 8: 0 (x8), 1 (x8), 2 (x8) -> mean 1, and so are the filled slots (top-2).
  EXPECT_DOUBLE_EQ(f.hsa, 3.0 * 4.0 * 32 * 8 * 1.0);
  EXPECT_DOUBLE_EQ(f.retrieval, 3.0 * 2.0 * 16 * 1.0);
  EXPECT_DOUBLE_EQ(f.matmul, 6.0 * double(active_parameters_per_token(c)));  // tied embeddings: counted once
  EXPECT_DOUBLE_EQ(f.per_token(), f.matmul + f.swa + f.hsa + f.retrieval);
}

TEST(TrainingFlops, SwaOnlyConfigHasNoHsaTermsAndBadLengthIsAnError) {
  ModelConfig c = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/tiny-swa.json");
  TrainingFlops f = training_flops_per_token(c, 4096);
  EXPECT_EQ(f.hsa, 0.0);
  EXPECT_EQ(f.retrieval, 0.0);
  EXPECT_GT(f.swa, 0.0);
  EXPECT_THROW(training_flops_per_token(c, 0), Error);
}

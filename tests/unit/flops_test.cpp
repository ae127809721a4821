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

TEST(TrainingFlops, ChunkEncoderByHand) {
  ModelConfig c = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  TrainingFlops base = training_flops_per_token(c, 28);
  EXPECT_EQ(base.encoder, 0.0);
  c.chunk_encoder_layers = 2;
  TrainingFlops f = training_flops_per_token(c, 28);
  // micro: dm 32, HQ*D 32, F 64, qk_norm: a block has 32 + 4*32*32 + 16 + 16 + 32 + 3*64*32 = 10336 parameters.
  const double block = 10336;
  // 28 tokens: 3 complete chunks of 8 -> 24 encoded tokens, 27 encoder rows, per token 27/28.
  EXPECT_DOUBLE_EQ(f.encoder, 27.0 / 28.0 * (6.0 * 2 * block + 2 * 3.0 * 4.0 * 32 * 9));
  // The blocks leave the per-token matmul count; [CLS] and the landmark norm (2 x 32) join it.
  EXPECT_DOUBLE_EQ(f.matmul, base.matmul + 6.0 * 64);
  EXPECT_DOUBLE_EQ(f.per_token(), f.matmul + f.swa + f.hsa + f.retrieval + f.encoder);
}

TEST(TrainingFlops, SwaOnlyConfigHasNoHsaTermsAndBadLengthIsAnError) {
  ModelConfig c = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/tiny-swa.json");
  TrainingFlops f = training_flops_per_token(c, 4096);
  EXPECT_EQ(f.hsa, 0.0);
  EXPECT_EQ(f.retrieval, 0.0);
  EXPECT_GT(f.swa, 0.0);
  EXPECT_THROW(training_flops_per_token(c, 0), Error);
}

#include "infer/sampler.h"

#include <gtest/gtest.h>

using namespace hsa;

TEST(Sampler, GreedyPicksTheArgmax) {
  Rng rng(1);
  EXPECT_EQ(sample_token(Tensor::from_values({0.1, 3.0, -1.0, 2.9}, {4}), {}, rng), 1);
}

TEST(Sampler, TopPKeepsOnlyTheNucleus) {
  // Probabilities ~ 0.84, 0.11, 0.04, 0.01: top_p 0.5 keeps only the first token.
  Tensor logits = Tensor::from_values({4.0, 2.0, 1.0, -0.5}, {4});
  Rng rng(7);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(sample_token(logits, {1.0, 0.5}, rng), 0);
}

TEST(Sampler, TemperatureSamplesFollowTheDistribution) {
  Tensor logits = Tensor::from_values({0.0, std::log(3.0)}, {2});  // p = 0.25, 0.75
  Rng rng(3);
  int ones = 0;
  for (int i = 0; i < 4000; ++i) ones += sample_token(logits, {1.0, 1.0}, rng);
  EXPECT_NEAR(ones / 4000.0, 0.75, 0.03);
}

TEST(Sampler, BadOptionsAreErrors) {
  Rng rng(1);
  Tensor logits = Tensor::from_values({1, 2}, {2});
  EXPECT_THROW(sample_token(logits, {-1.0, 1.0}, rng), Error);
  EXPECT_THROW(sample_token(logits, {1.0, 0.0}, rng), Error);
}

TEST(Sampler, GreedyReadsF32InPlaceAndAgreesWithOtherDtypes) {
  Rng rng(1);
  // Ties go to the first maximum whatever path reads the logits (f32 in place, bf16 through doubles).
  Tensor f32 = Tensor::from_values({0.5, 2.0, -1.0, 2.0, 1.0}, {5});
  Tensor bf16 = Tensor::from_values({0.5, 2.0, -1.0, 2.0, 1.0}, {5}, DType::bf16);
  EXPECT_EQ(sample_token(f32, {}, rng), 1);
  EXPECT_EQ(sample_token(bf16, {}, rng), 1);
  // A strided row (not contiguous) takes the general path and gives the same answer.
  Tensor rows = Tensor::from_values({0, 9, 0, 1, 3, 2}, {3, 2});
  EXPECT_EQ(sample_token(rows.select(1, 0), {}, rng), 2);
  EXPECT_EQ(sample_token(rows.select(1, 1), {}, rng), 0);
}

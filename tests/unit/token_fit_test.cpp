#include "text/token_fit.h"

#include <hsa/error.h>

#include <gtest/gtest.h>

using namespace hsa;

TEST(TokenFit, ByteLevelGuessIsExactInOneProbe) {
  int probes = 0;
  TokenFit fit = fit_to_tokens(1000, 0, 900, 0, [&](int64_t b) {
    ++probes;
    return b + 100;
  });
  EXPECT_EQ(fit.budget, 900);
  EXPECT_EQ(fit.tokens, 1000);
  EXPECT_EQ(probes, 1);
}

TEST(TokenFit, SubwordFindsTheLargestFittingBudget) {
  // ~3.7 bytes per token, counted in whole tokens: some lengths cannot be hit exactly.
  auto count = [](int64_t b) { return 20 + (b * 10) / 37; };
  int probes = 0;
  TokenFit fit = fit_to_tokens(4096, 0, 4076, 0, [&](int64_t b) {
    ++probes;
    return count(b);
  });
  EXPECT_EQ(fit.tokens, 4096);
  EXPECT_LE(count(fit.budget), 4096);
  EXPECT_LT(probes, 25);
  // Slack: stops at the first budget within 64 tokens below.
  TokenFit loose = fit_to_tokens(4096, 64, 4096, 1, count);
  EXPECT_GE(loose.tokens, 4096 - 64);
  EXPECT_LE(loose.tokens, 4096);
}

TEST(TokenFit, NothingFitsOrTooSmallBudgetThrows) {
  TokenFit none = fit_to_tokens(10, 0, 5, 0, [](int64_t b) { return 50 + b; });
  EXPECT_EQ(none.budget, -1);
  EXPECT_EQ(none.tokens, 50);
  // A count that jumps by two tokens per byte: the best budget lands one short.
  TokenFit jumpy = fit_to_tokens(101, 0, 10, 0, [](int64_t b) { return 2 * b; });
  EXPECT_EQ(jumpy.budget, 50);
  EXPECT_EQ(jumpy.tokens, 100);
}

// Sizing text to a length in tokens for any tokenizer. Synthetic samples are built from a byte budget (how much
// filler text goes in); with a byte-level tokenizer tokens = bytes and the first guess is exact, with a subword
// tokenizer the token count of the built text is only roughly proportional to the budget, so we search.
#pragma once
#include <cstdint>
#include <functional>

namespace hsa {

struct TokenFit {
  int64_t budget = -1;  // the largest budget found whose text fits (-1: none does, even the first guess)
  int64_t tokens = 0;   // its token count (or, when none fits, the count at the smallest budget tried)
};

// Finds a budget >= min_budget whose count_tokens(budget) <= max_tokens, stopping at the first one within
// `slack` tokens of max_tokens (slack 0: exactly max_tokens when some budget gives it). Starts at first_guess
// (exact for byte-level tokenizers, so they build each sample once), then secant steps on the measured
// tokens-per-budget slope, then bisection between the best fit and the smallest overshoot. count_tokens must be
// deterministic; it may throw hsa::Error for budgets too small to build.
TokenFit fit_to_tokens(int64_t max_tokens, int64_t slack, int64_t first_guess, int64_t min_budget,
                       const std::function<int64_t(int64_t budget)>& count_tokens);

}  // namespace hsa

#include "text/token_fit.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hsa {

TokenFit fit_to_tokens(int64_t max_tokens, int64_t slack, int64_t first_guess, int64_t min_budget,
                       const std::function<int64_t(int64_t)>& count_tokens) {
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  TokenFit best;                        // largest fitting budget so far
  int64_t over = kNone, over_tokens = 0;  // smallest budget that overshoots
  auto probe = [&](int64_t budget) {
    const int64_t n = count_tokens(budget);
    if (n <= max_tokens) {
      if (budget > best.budget) best = {budget, n};
    } else if (budget < over) {
      over = budget;
      over_tokens = n;
    }
    return n;
  };
  auto done = [&] { return best.budget >= 0 && best.tokens >= max_tokens - slack; };

  // Secant steps: each guess aims at max_tokens along the line through the last two probes (or the origin).
  int64_t b0 = 0, n0 = 0;
  int64_t b1 = std::max(first_guess, min_budget);
  int64_t n1 = probe(b1);
  for (int step = 0; step < 6 && !done(); ++step) {
    const double slope = b1 != b0 && n1 != n0 ? double(n1 - n0) / double(b1 - b0) : 0.0;
    int64_t next = slope > 0 ? b1 + static_cast<int64_t>(std::floor(double(max_tokens - n1) / slope)) : b1 * 2;
    next = std::max(next, min_budget);
    if (over != kNone) next = std::min(next, over - 1);
    if (next <= best.budget || next == b1) break;  // no new information along the line: bisect instead
    b0 = b1;
    n0 = n1;
    b1 = next;
    n1 = probe(b1);
  }
  // Grow until something overshoots (or stop if nothing fits at the minimum), then bisect the bracket.
  while (!done() && over == kNone) {
    if (best.budget < 0) return {-1, over_tokens};
    probe(std::max<int64_t>(best.budget * 2, best.budget + 1));
  }
  if (best.budget < 0 && over == min_budget) return {-1, over_tokens};
  while (!done() && over - std::max(best.budget, min_budget - 1) > 1) {
    const int64_t lo = std::max(best.budget, min_budget - 1);
    probe(lo + (over - lo) / 2);
  }
  if (best.budget < 0) return {-1, over_tokens};
  return best;
}

}  // namespace hsa

// Token ids drawn uniformly below a vocabulary size, deterministic in the seed: prompts for model tests whose
// content does not matter.
#pragma once
#include <hsa/random.h>

#include <cstdint>
#include <vector>

namespace hsa::testing {

inline std::vector<int32_t> random_tokens(int64_t n, uint64_t seed, int32_t vocab = 256) {
  Rng rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = static_cast<int32_t>(rng.below(vocab));
  return ids;
}

}  // namespace hsa::testing

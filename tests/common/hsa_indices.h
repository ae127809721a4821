// Chunk selections shaped like real retrieval output, for HSA attention tests.
#pragma once
#include <hsa/random.h>
#include <hsa/tensor.h>

#include <algorithm>
#include <vector>

namespace hsa::testing {

// Causal-style indices i32 [b, l, h, k]: token t picks up to k distinct complete chunks (c < t / s, c < chunks),
// -1 for the rest, so early tokens have no chunk at all and others fewer than k.
inline Tensor causal_indices(int64_t b, int64_t l, int64_t h, int64_t s, int64_t chunks, int64_t k, uint64_t seed) {
  std::vector<int32_t> idx;
  Rng rng(seed);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t t = 0; t < l; ++t)
      for (int64_t r = 0; r < h; ++r) {
        int64_t complete = std::min(t / s, chunks);
        std::vector<int32_t> pool(complete);
        for (int64_t x = 0; x < complete; ++x) pool[x] = int32_t(x);
        for (int64_t x = complete - 1; x > 0; --x) std::swap(pool[x], pool[rng.below(uint64_t(x + 1))]);
        for (int64_t i = 0; i < k; ++i) idx.push_back(i < complete ? pool[i] : -1);
      }
  return Tensor::from_i32(idx, {b, l, h, k});
}

// The distinct chunks (>= 0) that i32 `indices` select anywhere: how many pages attention over them gathers. A
// TieredAttention over them is one piece exactly when this is at most max(staging pages, h * k).
inline int64_t distinct_chunks(const Tensor& indices) {
  Tensor host = indices.to(Device::cpu).contiguous();
  std::vector<int32_t> ids(host.data<int32_t>(), host.data<int32_t>() + host.numel());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return static_cast<int64_t>(std::count_if(ids.begin(), ids.end(), [](int32_t c) { return c >= 0; }));
}

}  // namespace hsa::testing

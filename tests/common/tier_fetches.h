// Random fetches from a tiered chunk memory, for the CPU and GPU tests of the page gather: a few pages on the
// device, more in host memory, the rest on disk, a cache of a few pages, and fetches long and short (many times
// the cache, so pages are evicted and read again within one fetch), with repeated chunks. Every fetched page must
// equal the chunk's keys and values in an all-resident memory, and the cache statistics must be those of a plain
// LRU list fed the same pages one by one.
#pragma once
#include "common/temp_dir.h"
#include "model/chunk_memory.h"

#include <hsa/random.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <list>

namespace hsa::testing {

inline void expect_random_fetches_read_back(Device device, DType dtype) {
  const int64_t C = 90, S = 4, H = 2, D = 8, device_pages = 7, host_pages = 40, cache = 5;
  const size_t page = static_cast<size_t>(2 * S * H * D) * dtype_size(dtype);
  Tensor k = randn({1, C, S, H, D}, 31, 1.0, dtype), v = randn({1, C, S, H, D}, 32, 1.0, dtype);
  Tensor l = randn({1, C, H, 2}, 33, 1.0, dtype);
  TempDir dir;
  MemoryTiers t;
  t.device_budget = device_pages * page;
  t.host_budget = host_pages * page;
  t.disk_dir = dir.path.string();
  t.cache_pages = cache;
  ChunkMemory m;
  m.set_tiers(t);
  for (int64_t c = 0; c < C; c += 10)
    m.append(k.slice(1, c, c + 10).to(device), v.slice(1, c, c + 10).to(device), l.slice(1, c, c + 10).to(device));
  TierUsage u = m.usage();
  ASSERT_EQ(u.device_pages, device_pages);
  ASSERT_EQ(u.host_pages, host_pages);
  ASSERT_EQ(u.disk_pages, C - device_pages - host_pages);
  std::list<int64_t> lru;  // the reference cache: spilled pages, most recent first
  TierStats want;
  Rng rng(7);
  for (int64_t length : {1, 3, 200, 1, 40, 7, 1200, 2, 64, 5, 300}) {
    std::vector<int32_t> chunks;
    for (int64_t i = 0; i < length; ++i) {  // mostly spilled chunks, often the same few (cache hits)
      const uint64_t r = rng.below(10);
      chunks.push_back(static_cast<int32_t>(r < 3 ? device_pages + rng.below(4) : rng.below(uint64_t(C))));
    }
    for (int32_t c : chunks) {
      if (c < device_pages) continue;
      const int64_t p = c - device_pages;
      ++want.fetched;
      auto it = std::find(lru.begin(), lru.end(), p);
      if (it != lru.end()) {
        ++want.cache_hits;
        lru.erase(it);
      } else {
        ++(p < host_pages ? want.host_reads : want.disk_reads);
        if (static_cast<int64_t>(lru.size()) == cache) lru.pop_back();
      }
      lru.push_front(p);
    }
    FetchedPages f = m.fetch(chunks);
    f.wait();
    const std::vector<double> got_k = f.k.to(Device::cpu).to(DType::f64).to_vector();
    const std::vector<double> got_v = f.v.to(Device::cpu).to(DType::f64).to_vector();
    const size_t n = static_cast<size_t>(S * H * D);
    for (size_t i = 0; i < chunks.size(); ++i) {
      const int64_t c = chunks[i];
      const std::vector<double> want_k = k.slice(1, c, c + 1).contiguous().to(DType::f64).to_vector();
      const std::vector<double> want_v = v.slice(1, c, c + 1).contiguous().to(DType::f64).to_vector();
      ASSERT_TRUE(std::equal(want_k.begin(), want_k.end(), got_k.begin() + i * n)) << "keys of chunk " << c;
      ASSERT_TRUE(std::equal(want_v.begin(), want_v.end(), got_v.begin() + i * n)) << "values of chunk " << c;
    }
    const TierStats got = m.usage().stats;
    EXPECT_EQ(got.fetched, want.fetched) << length;
    EXPECT_EQ(got.cache_hits, want.cache_hits) << length;
    EXPECT_EQ(got.host_reads, want.host_reads) << length;
    EXPECT_EQ(got.disk_reads, want.disk_reads) << length;
  }
  EXPECT_GT(want.cache_hits, 0);
  EXPECT_GT(want.host_reads, 0);
  EXPECT_GT(want.disk_reads, 0);
}

}  // namespace hsa::testing

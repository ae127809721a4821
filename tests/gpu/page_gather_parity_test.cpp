// The page gather (cuda/page_gather.h) against the copies it replaced, one side_copy per half page: pages from
// mapped pinned host memory (several host_staging_alloc blocks, as the host tier allocates them) and from device
// memory, one page or thousands, repeated pages, more copies than one launch takes, and an odd page size (the
// kernel's byte-by-byte path). Both paths must write exactly the source bytes, every destination byte included.
#include "common/tier_fetches.h"
#include "cuda/runtime.h"
#include "gpu/parity.h"
#include "tensor/device_memory.h"

#include <hsa/random.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

using namespace hsa;
using namespace hsa::testing;

namespace {

struct Page {
  const char* at;  // host_staging_alloc memory or device memory
  bool on_device;
};

// Pages of `page` bytes (two halves) in three pinned host blocks and one device buffer, filled with random bytes;
// `mirror` keeps every page's bytes on the host.
class PageSources {
 public:
  PageSources(size_t page, int64_t pages_per_block) : page_(page) {
    Rng rng(5);
    for (int b = 0; b < 4; ++b) {
      std::vector<char> bytes(page * static_cast<size_t>(pages_per_block));
      for (char& c : bytes) c = static_cast<char>(rng.below(256));
      char* block;
      if (b < 3) {
        block = static_cast<char*>(host_staging_alloc(Device::cuda, bytes.size()));
        std::memcpy(block, bytes.data(), bytes.size());
        host_blocks_.push_back(block);
      } else {
        block = static_cast<char*>(device_alloc(Device::cuda, bytes.size()));
        copy_bytes(block, Device::cuda, bytes.data(), Device::cpu, bytes.size());
        device_block_ = block;
      }
      for (int64_t p = 0; p < pages_per_block; ++p) {
        pages_.push_back({block + static_cast<size_t>(p) * page, b == 3});
        mirror_.push_back(bytes.data() + static_cast<size_t>(p) * page);
      }
      bytes_.push_back(std::move(bytes));
    }
  }
  ~PageSources() {
    synchronize_device(Device::cuda);
    for (char* b : host_blocks_) host_staging_free(Device::cuda, b);
    device_deleter(Device::cuda)(device_block_);
  }
  int64_t size() const { return static_cast<int64_t>(pages_.size()); }
  const Page& operator[](int64_t i) const { return pages_[static_cast<size_t>(i)]; }
  const char* mirror(int64_t i) const { return mirror_[static_cast<size_t>(i)]; }
  size_t page() const { return page_; }

 private:
  size_t page_;
  std::vector<char*> host_blocks_;
  char* device_block_ = nullptr;
  std::vector<Page> pages_;
  std::vector<const char*> mirror_;
  std::vector<std::vector<char>> bytes_;
};

std::vector<char> read_back(const void* p, size_t bytes) {
  std::vector<char> out(bytes);
  copy_bytes(out.data(), Device::cpu, p, Device::cuda, bytes);
  return out;
}

struct Times {
  double copies_ms = 0, gather_ms = 0;  // host wall time from queueing to done (a warm second call is meaningful)
};

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Gathers pages `picks` (keys into the first half of dst, values into the second, as ChunkMemory::fetch lays
// them out) once by one side_copy per half page and once by one side_gather, and compares both with the sources.
Times expect_gather_equals_copies(const PageSources& src, const std::vector<int64_t>& picks) {
  const size_t half = src.page() / 2, n = picks.size(), bytes = 2 * n * half;
  char* old_dst = static_cast<char*>(device_alloc(Device::cuda, bytes));
  char* new_dst = static_cast<char*>(device_alloc(Device::cuda, bytes));
  std::vector<char> fill_a(bytes, char(0x5A)), fill_b(bytes, char(0xA5));  // different: an unwritten byte shows
  copy_bytes(old_dst, Device::cuda, fill_a.data(), Device::cpu, bytes);
  copy_bytes(new_dst, Device::cuda, fill_b.data(), Device::cpu, bytes);
  synchronize_device(Device::cuda);
  Times times;
  auto t0 = std::chrono::steady_clock::now();
  side_copies_begin(Device::cuda);
  for (size_t u = 0; u < n; ++u) {
    const Page& p = src[picks[u]];
    side_copy(Device::cuda, old_dst + u * half, true, p.at, p.on_device, half);
    side_copy(Device::cuda, old_dst + (n + u) * half, true, p.at + half, p.on_device, half);
  }
  SideCopies old_done = side_copies_end(Device::cuda);
  wait_side_copies(old_done);
  synchronize_device(Device::cuda);
  times.copies_ms = ms_since(t0);
  t0 = std::chrono::steady_clock::now();
  PageGather gather;
  gather.bytes = half;
  for (size_t u = 0; u < n; ++u) {
    const Page& p = src[picks[u]];
    gather.add(new_dst + u * half, p.at);
    gather.add(new_dst + (n + u) * half, p.at + half);
  }
  side_copies_begin(Device::cuda);
  side_gather(Device::cuda, gather);
  SideCopies new_done = side_copies_end(Device::cuda);
  wait_side_copies(new_done);
  synchronize_device(Device::cuda);
  times.gather_ms = ms_since(t0);
  const std::vector<char> got_old = read_back(old_dst, bytes), got_new = read_back(new_dst, bytes);
  cuda::check_input_errors();  // synchronizes: throws if the kernel failed
  device_deleter(Device::cuda)(old_dst);
  device_deleter(Device::cuda)(new_dst);
  std::vector<char> want(bytes);
  for (size_t u = 0; u < n; ++u) {
    std::memcpy(want.data() + u * half, src.mirror(picks[u]), half);
    std::memcpy(want.data() + (n + u) * half, src.mirror(picks[u]) + half, half);
  }
  EXPECT_TRUE(got_old == want) << "side_copy path, " << n << " pages";
  EXPECT_TRUE(got_new == got_old) << "side_gather differs from the side copies, " << n << " pages";
  return times;
}

std::vector<int64_t> random_picks(int64_t count, int64_t pages, uint64_t seed) {
  Rng rng(seed);
  std::vector<int64_t> picks;
  for (int64_t i = 0; i < count; ++i) picks.push_back(static_cast<int64_t>(rng.below(uint64_t(pages))));
  return picks;
}

}  // namespace

TEST(PageGatherParity, OnePageFromMappedHostMemory) {
  HSA_REQUIRE_GPU();
  PageSources src(8192, 64);
  expect_gather_equals_copies(src, {70});  // the second host block
  expect_gather_equals_copies(src, {200});  // device memory
}

// 1500 pages of 8 KiB (the tiny model's bf16 page) from all four blocks: every page is picked ~6 times. Prints
// both paths' times (the second, warm call).
TEST(PageGatherParity, ThousandsOfRepeatedPagesFromEveryBlock) {
  HSA_REQUIRE_GPU();
  PageSources src(8192, 64);
  std::vector<int64_t> picks = random_picks(1500, src.size(), 11);
  expect_gather_equals_copies(src, picks);
  const Times t = expect_gather_equals_copies(src, picks);
  std::printf("1500 pages of 8 KiB: %.3f ms as 3000 side copies, %.3f ms as one gather\n", t.copies_ms, t.gather_ms);
  std::vector<int64_t> same(1000, 3);  // one page a thousand times
  expect_gather_equals_copies(src, same);
}

// 40,000 pages of 128 bytes: 80,000 copies, more than one launch takes (the table is split).
TEST(PageGatherParity, MoreCopiesThanOneLaunchTakes) {
  HSA_REQUIRE_GPU();
  PageSources src(128, 300);
  expect_gather_equals_copies(src, random_picks(40000, src.size(), 12));
}

// Pages of 2 x 50 bytes: sources and destinations off 16-byte alignment, so the kernel copies byte by byte.
TEST(PageGatherParity, OddPageSizesCopyByteByByte) {
  HSA_REQUIRE_GPU();
  PageSources src(100, 20);
  expect_gather_equals_copies(src, random_picks(333, src.size(), 13));
  expect_gather_equals_copies(src, {1});
}

// The whole fetch on the GPU: resident, cached, pinned host and disk pages in one gather, the cache's slots
// rewritten within a fetch while other pages are read from it; bf16 and f32.
TEST(PageGatherParity, TieredFetchesThroughASmallCacheReadBackExactly) {
  HSA_REQUIRE_GPU();
  expect_random_fetches_read_back(Device::cuda, DType::bf16);
  expect_random_fetches_read_back(Device::cuda, DType::f32);
}

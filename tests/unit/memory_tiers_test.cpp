// Chunk memory tiers below the model: the plan per tier, the disk tier's scratch file (owned directory, clean
// removal, full disk), a tiered ChunkMemory (its pages read back exactly, wherever they live) and TieredAttention
// (pages gathered into compact buffers, cut into pieces, bit-identical to attention over the whole memory).
#include "common/error_text.h"
#include "common/hsa_indices.h"
#include "common/temp_dir.h"
#include "common/tier_fetches.h"
#include "model/chunk_memory.h"
#include "model/memory_plan.h"
#include "model/tiered_attention.h"
#include "util/scratch_file.h"

#include <hsa/random.h>

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <csignal>
#include <cstring>
#include <filesystem>

using namespace hsa;
using hsa::testing::error_of;
using hsa::testing::has;
using hsa::testing::TempDir;

namespace {

ModelConfig tiny() { return ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/tiny.json"); }

size_t entries_in(const std::filesystem::path& dir) {
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
}

std::vector<double> values(const Tensor& t) { return t.contiguous().to_vector(); }

// A memory of `chunks` random chunks, appended in uneven groups, with the given tiers (nullptr: all resident).
ChunkMemory random_memory(int64_t chunks, const MemoryTiers* tiers, int64_t S = 4, int64_t H = 2, int64_t D = 3) {
  ChunkMemory m;
  if (tiers) m.set_tiers(*tiers);
  Tensor k = randn({1, chunks, S, H, D}, 1), v = randn({1, chunks, S, H, D}, 2), l = randn({1, chunks, H, 2}, 3);
  for (int64_t c = 0; c < chunks;) {
    int64_t n = std::min<int64_t>(1 + c % 3, chunks - c);
    m.append(k.slice(1, c, c + n), v.slice(1, c, c + n), l.slice(1, c, c + n));
    c += n;
  }
  return m;
}

}  // namespace

TEST(MemoryTiers, PlanFillsTheTiersInOrder) {
  ModelConfig c = tiny();
  const size_t page = page_bytes(c, DType::bf16);
  EXPECT_EQ(page, size_t(2 * c.chunk_size * c.num_key_value_heads * c.head_dim * 2));
  MemoryTiers t;
  t.device_budget = 10 * page + 1;
  t.host_budget = 5 * page;
  TierPlan p = plan_tiers(t, c, DType::bf16, 100);
  EXPECT_EQ(p.device_pages, 10);
  EXPECT_EQ(p.host_pages, 5);
  EXPECT_EQ(p.disk_pages, 0);
  EXPECT_FALSE(p.fits);
  t.disk_dir = "/tmp";
  p = plan_tiers(t, c, DType::bf16, 100);
  EXPECT_TRUE(p.fits);
  EXPECT_EQ(p.disk_pages, 85);
  EXPECT_EQ(p.working_bytes, size_t(t.cache_pages + t.staging_pages) * page);
  std::vector<std::string> lines = describe_plan(p, "GPU");
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_TRUE(has(lines[0], "landmarks") && has(lines[0], "100 chunks")) << lines[0];
  EXPECT_TRUE(has(lines[2], "pinned host") && has(lines[2], "5 chunks")) << lines[2];
  EXPECT_TRUE(has(lines[3], "disk") && has(lines[3], "85 chunks")) << lines[3];
  TierPlan all = plan_tiers(MemoryTiers{}, c, DType::bf16, 100);  // no budget: everything resident
  EXPECT_EQ(all.device_pages, 100);
  EXPECT_EQ(all.working_bytes, 0u);
}

TEST(ScratchFile, OwnsItsDirectoryAndRemovesOnlyThat) {
  TempDir dir;
  std::string other = dir.file("other");
  std::filesystem::create_directory(other);
  std::string own;
  {
    ScratchFile f(dir.path.string(), "--disk-dir", 4096);
    own = f.own_dir();
    EXPECT_EQ(std::filesystem::path(own).parent_path(), dir.path);
    std::memcpy(f.at(0, 5), "hello", 5);
    std::memcpy(f.at(3 * 4096 + 8, 5), "world", 5);
    EXPECT_EQ(f.size(), 4u * 4096);
    EXPECT_EQ(std::string(f.at(0, 5), 5), "hello");
    EXPECT_EQ(std::string(f.at(3 * 4096 + 8, 5), 5), "world");
    EXPECT_TRUE(std::filesystem::exists(f.path()));
    EXPECT_TRUE(has(error_of([&] { f.at(4090, 10); }), "straddle"));
  }
  EXPECT_FALSE(std::filesystem::exists(own));
  EXPECT_TRUE(std::filesystem::exists(other));
  EXPECT_EQ(entries_in(dir.path), 1u);
}

TEST(ScratchFile, FullDiskIsAOneLineError) {
  TempDir dir;
  // A file-size limit stands in for a full disk: posix_fallocate fails the same way (EFBIG instead of ENOSPC).
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 8192;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string e;
  {
    ScratchFile f(dir.path.string(), "--disk-dir", 4096);
    f.at(0, 16);
    f.at(4096, 16);
    e = error_of([&] { f.at(2 * 4096, 16); });
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(has(e, "--disk-dir: cannot grow") && has(e, "pages.bin")) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  EXPECT_EQ(entries_in(dir.path), 0u);
}

TEST(TieredChunkMemory, PagesReadBackExactlyFromEveryTier) {
  TempDir dir;
  ChunkMemory whole = random_memory(23, nullptr);
  const size_t page = 2 * 4 * 2 * 3 * sizeof(float);
  for (size_t device_pages : {size_t(0), size_t(1), size_t(7)}) {
    MemoryTiers t;
    t.device_budget = device_pages * page;
    t.host_budget = 5 * page;
    t.disk_dir = dir.path.string();
    t.cache_pages = 3;
    ChunkMemory m = random_memory(23, &t);
    EXPECT_FALSE(m.fully_resident());
    TierUsage u = m.usage();
    EXPECT_EQ(u.device_pages, int64_t(device_pages));
    EXPECT_EQ(u.host_pages, 5);
    EXPECT_EQ(u.disk_pages, 23 - 5 - int64_t(device_pages));
    EXPECT_EQ(values(m.mem_k()), values(whole.mem_k()));
    EXPECT_EQ(values(m.mem_v()), values(whole.mem_v()));
    EXPECT_EQ(values(m.landmarks()), values(whole.landmarks()));
    FetchedPages f = m.fetch({20, 0, 6, 20});
    f.wait();
    for (int u2 = 0; u2 < 4; ++u2) {
      int64_t c = f.chunks[u2];
      EXPECT_EQ(values(f.k.slice(1, u2, u2 + 1)), values(whole.mem_k().slice(1, c, c + 1))) << c;
      EXPECT_EQ(values(f.v.slice(1, u2, u2 + 1)), values(whole.mem_v().slice(1, c, c + 1))) << c;
    }
    EXPECT_GT(m.usage().stats.cache_hits, 0);  // chunk 20 twice
  }
  EXPECT_EQ(entries_in(dir.path), 0u);
}

// The fetch plans every copy through the cache first and then queues them all at once (one gather on cuda): a
// page evicted and read again within one fetch, or a slot refilled from disk, must still read back exactly.
TEST(TieredChunkMemory, RandomFetchesThroughASmallCacheReadBackExactly) {
  hsa::testing::expect_random_fetches_read_back(Device::cpu, DType::f32);
}

TEST(TieredChunkMemory, NeedsBatchOneAndAnEmptyMemory) {
  MemoryTiers t;
  t.device_budget = 0;
  ChunkMemory m;
  m.set_tiers(t);
  EXPECT_TRUE(has(error_of([&] {
                    m.append(Tensor::zeros({2, 1, 4, 1, 2}), Tensor::zeros({2, 1, 4, 1, 2}), Tensor::zeros({2, 1, 1, 2}));
                  }),
                  "batch 1"));
  ChunkMemory full = random_memory(2, nullptr);
  EXPECT_TRUE(has(error_of([&] { full.set_tiers(t); }), "already holds 2 chunks"));
}

TEST(TieredAttention, CompactPiecesAreBitIdenticalToTheWholeMemory) {
  TempDir dir;
  const int64_t C = 40, S = 4, H = 2, D = 3, HQ = 4, K = 3, L = 200;
  ChunkMemory whole = random_memory(C, nullptr, S, H, D);
  Tensor q = randn({1, L, HQ, D}, 9), weights = randn({1, L, H, K}, 10);
  Tensor indices = hsa::testing::causal_indices(1, L, H, S, C, K, 11);
  ops::HsaOut want = ops::hsa_attention_forward(q, whole.mem_k(), whole.mem_v(), indices, weights, 0.7);
  for (int64_t staging : {int64_t(1), int64_t(6), int64_t(17), int64_t(1000)}) {
    MemoryTiers t;
    t.device_budget = 5 * 2 * S * H * D * sizeof(float);
    t.disk_dir = dir.path.string();
    t.staging_pages = staging;
    t.cache_pages = 4;
    ChunkMemory m = random_memory(C, &t, S, H, D);
    TieredAttention attn(m, indices);
    if (staging < H * K * 2) EXPECT_GT(attn.pieces(), 1) << staging;
    if (staging == 1000) EXPECT_EQ(attn.pieces(), 1);
    EXPECT_EQ(attn.pieces() > 1, hsa::testing::distinct_chunks(indices) > std::max(staging, H * K)) << staging;
    EXPECT_EQ(values(attn.forward(q, weights, 0.7)), values(want.out)) << staging;
  }
}

// A segment is cut into pieces exactly when it selects more distinct chunks than the staging buffer holds (or one
// token's H * K, whichever is more): causal selections of L tokens reach only the first L / S chunks, however many
// the memory holds. The shape of the GPU parity test's (tests/gpu/tiered_memory_parity_test.cpp): 300 tokens of
// chunks of 16 select at most 18 of its 60 chunks, so a staging buffer of 23 pages takes them in one piece.
TEST(TieredAttention, PiecesExactlyWhenTheSelectionExceedsTheStagingBuffer) {
  TempDir dir;
  const int64_t C = 60, S = 16, H = 2, D = 4, HQ = 4, K = 4, L = 300;
  Tensor indices = hsa::testing::causal_indices(1, L, H, S, C, K, 6);
  const int64_t selected = hsa::testing::distinct_chunks(indices);
  EXPECT_LE(selected, L / S);
  EXPECT_GT(selected, 8);
  ChunkMemory whole = random_memory(C, nullptr, S, H, D);
  Tensor q = randn({1, L, HQ, D}, 12), weights = randn({1, L, H, K}, 13);
  ops::HsaOut want = ops::hsa_attention_forward(q, whole.mem_k(), whole.mem_v(), indices, weights, 0.2);
  for (int64_t staging : {int64_t(1), int64_t(8), selected - 1, selected, int64_t(23), int64_t(4096)}) {
    MemoryTiers t;
    t.device_budget = 7 * 2 * S * H * D * sizeof(float);
    t.disk_dir = dir.path.string();
    t.staging_pages = staging;
    t.cache_pages = 5;
    ChunkMemory m = random_memory(C, &t, S, H, D);
    TieredAttention attn(m, indices);
    EXPECT_EQ(attn.pieces() > 1, selected > std::max(staging, H * K)) << staging << " of " << selected;
    EXPECT_EQ(values(attn.forward(q, weights, 0.2)), values(want.out)) << staging;
  }
}

TEST(MemoryTiers, CudaDefaultBudgetLeavesRoomForWeightsAndActivations) {
  ModelConfig c = tiny();
  Placement gpu{Device::cuda, DType::bf16, "test GPU"};
  const size_t page = page_bytes(c, DType::bf16), weights = 100u << 20;
  const int64_t positions = 1 << 20, chunks = positions / c.chunk_size, segment = 4096;
  // Plenty of memory: everything stays on the GPU, no tiers.
  MemoryTiers roomy = choose_memory_tiers(c, gpu, TierRequest{}, weights, segment, positions, size_t(64) << 30);
  EXPECT_FALSE(roomy.enabled());
  // 384 MiB free: the pages get what is left after weights, activations, landmarks and the working set.
  const size_t free = size_t(384) << 20;
  MemoryTiers tight = choose_memory_tiers(c, gpu, TierRequest{}, weights, segment, positions, free);
  ASSERT_TRUE(tight.enabled());
  EXPECT_GT(tight.host_budget, 0u);
  const size_t reserved = weights + activation_bytes_estimate(c, DType::bf16, segment) +
                          2 * size_t(chunks) * landmark_bytes(c, DType::bf16) +
                          size_t(tight.cache_pages + tight.staging_pages) * page;
  EXPECT_LT(tight.device_budget + reserved, free);
  EXPECT_GT(tight.device_budget, 0u);
  EXPECT_LT(tight.device_budget, size_t(chunks) * page);
  // A given budget is used as it is; on the cpu there is no default and no host tier.
  TierRequest asked{12345, 0, "/tmp"};
  EXPECT_EQ(choose_memory_tiers(c, gpu, asked, weights, segment, positions, free).device_budget, 12345u);
  Placement cpu{Device::cpu, DType::f32, "cpu"};
  EXPECT_FALSE(choose_memory_tiers(c, cpu, TierRequest{}, weights, segment, positions, free).enabled());
  EXPECT_EQ(choose_memory_tiers(c, cpu, asked, weights, segment, positions, free).device_budget, 12345u);
  TierRequest host_on_cpu{0, 1000, ""};
  EXPECT_TRUE(has(error_of([&] { choose_memory_tiers(c, cpu, host_on_cpu, weights, segment, positions, free); }),
                  "--host-budget is for --device cuda"));
}

// Chunk memory tiers on the cpu: a RAM budget of a few pages forces the rest of the chunk memory to host memory
// and to a file on disk; prefill (several segment sizes, a prompt that ends inside a chunk) and decoding must give
// exactly the logits and tokens of the all-resident memory. The disk tier's files vanish with the session.
#include "common/random_tokens.h"
#include "common/error_text.h"
#include "common/gradcheck.h"
#include "common/temp_dir.h"
#include "infer/sampler.h"
#include "infer/session.h"
#include "model/param_spec.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace hsa;
using hsa::testing::error_of;
using hsa::testing::has;
using hsa::testing::max_abs_diff;
using hsa::testing::TempDir;

using hsa::testing::random_tokens;

namespace {

struct Generation {
  std::vector<Tensor> logits;  // after the prompt, then after each generated token
  std::vector<int32_t> tokens;
  TierUsage usage;
};

// Prefill in `segment`s, then greedy decoding of `steps` tokens.
Generation generate(const Model& model, const std::vector<int32_t>& prompt, int64_t segment, int64_t steps,
             const MemoryTiers* tiers) {
  Session session(model);
  if (tiers) session.set_memory_tiers(*tiers);
  Generation r;
  Rng rng(1);
  r.logits.push_back(session.prefill(prompt, segment));
  for (int64_t i = 0; i < steps; ++i) {
    int32_t next = sample_token(r.logits.back(), SamplingOptions{}, rng);
    r.tokens.push_back(next);
    r.logits.push_back(session.step(next));
  }
  r.usage = session.memory_usage();
  return r;
}

void expect_identical(const Generation& want, const Generation& got) {
  ASSERT_EQ(want.logits.size(), got.logits.size());
  for (size_t i = 0; i < want.logits.size(); ++i) EXPECT_EQ(max_abs_diff(want.logits[i], got.logits[i]), 0.0) << i;
  EXPECT_EQ(want.tokens, got.tokens);
}

// configs/micro.json, with more KV heads or the chunk encoder when asked (small enough for a loaded machine).
Model micro_model(uint64_t seed, int64_t kv_heads = 1, int64_t encoder_layers = 0) {
  ModelConfig c = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  c.num_key_value_heads = kv_heads;
  c.chunk_encoder_layers = encoder_layers;
  return Model(c, init_parameters(c, seed, DType::f32));
}

size_t entries_in(const std::filesystem::path& dir) {
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
}

}  // namespace

TEST(TieredSession, DiskPagesGiveTheLogitsAndTokensOfTheResidentMemory) {
  Model model = micro_model(11, 2);
  const ModelConfig& c = model.config();
  TempDir dir;
  // 41 complete chunks and 5 tokens of a 42nd: the prompt ends inside a chunk.
  std::vector<int32_t> prompt = random_tokens(41 * c.chunk_size + 5, 5, 260);
  MemoryTiers tiers;
  tiers.device_budget = 3 * page_bytes(c, DType::f32) + 5;  // 3 pages in RAM, the rest on disk
  tiers.disk_dir = dir.path.string();
  tiers.cache_pages = 2;
  tiers.staging_pages = 5;  // a long segment selects more: it is cut into pieces
  for (int64_t segment : {int64_t(1000), 3 * c.chunk_size, int64_t(13)}) {
    SCOPED_TRACE(segment);
    Generation want = generate(model, prompt, segment, 12, nullptr);
    Generation got = generate(model, prompt, segment, 12, &tiers);
    expect_identical(want, got);
    const int64_t chunks = (static_cast<int64_t>(prompt.size()) + 12) / c.chunk_size;
    EXPECT_EQ(got.usage.device_pages, 3);
    EXPECT_EQ(got.usage.host_pages, 0);
    EXPECT_EQ(got.usage.disk_pages, chunks - 3);
    EXPECT_GT(got.usage.stats.disk_reads, 0);
    EXPECT_GT(got.usage.stats.cache_hits, 0);
    EXPECT_EQ(entries_in(dir.path), 0u) << "the disk tier's directory outlived its session";
  }
}

TEST(TieredSession, HostThenDiskTiersWithTheChunkEncoderAndTwoHeads) {
  // Two KV heads: a page holds both, so a chunk selected by both heads is fetched once.
  Model model = micro_model(12, 2, 1);
  const ModelConfig& c = model.config();
  TempDir dir;
  std::vector<int32_t> prompt = random_tokens(9 * c.chunk_size + 7, 6, 260);
  MemoryTiers tiers;
  tiers.device_budget = 2 * page_bytes(c, DType::f32);
  tiers.host_budget = 4 * page_bytes(c, DType::f32);
  tiers.disk_dir = dir.path.string();
  tiers.cache_pages = 0;  // no cache: every spilled page is read from its tier
  Generation want = generate(model, prompt, 2 * c.chunk_size, 8, nullptr);
  Generation got = generate(model, prompt, 2 * c.chunk_size, 8, &tiers);
  expect_identical(want, got);
  EXPECT_EQ(got.usage.device_pages, 2);
  EXPECT_EQ(got.usage.host_pages, 4);
  EXPECT_GT(got.usage.disk_pages, 0);
  EXPECT_GT(got.usage.stats.host_reads, 0);
  EXPECT_GT(got.usage.stats.disk_reads, 0);
  EXPECT_EQ(got.usage.stats.cache_hits, 0);
}

TEST(TieredSession, ZeroBudgetKeepsOnlyLandmarks) {
  Model model = micro_model(13);
  TempDir dir;
  std::vector<int32_t> prompt = random_tokens(6 * model.config().chunk_size + 1, 7, 260);
  MemoryTiers tiers;
  tiers.device_budget = 0;
  tiers.disk_dir = dir.path.string();
  Generation want = generate(model, prompt, 64, 5, nullptr);
  Generation got = generate(model, prompt, 64, 5, &tiers);
  expect_identical(want, got);
  EXPECT_EQ(got.usage.device_pages, 0);
  EXPECT_EQ(got.usage.device_bytes, 0u);
}

TEST(TieredSession, NoDiskDirectoryAndTooLittleMemoryFailsClearly) {
  Model model = micro_model(14);
  MemoryTiers tiers;
  tiers.device_budget = page_bytes(model.config(), DType::f32);
  Session session(model);
  session.set_memory_tiers(tiers);
  std::string e = error_of([&] { session.prefill(random_tokens(4 * model.config().chunk_size, 8, 260), 256); });
  EXPECT_TRUE(has(e, "--disk-dir")) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

TEST(TieredSession, BadDiskDirectoryIsOneLineAndTouchesNothing) {
  Model model = micro_model(15);
  TempDir dir;
  const std::string file = dir.file("not-a-dir");
  std::ofstream(file) << "keep me";
  for (const std::string& bad : {file, dir.file("missing")}) {
    MemoryTiers tiers;
    tiers.device_budget = 0;
    tiers.disk_dir = bad;
    Session session(model);
    session.set_memory_tiers(tiers);
    std::string e = error_of([&] { session.prefill(random_tokens(2 * model.config().chunk_size, 9, 260), 256); });
    EXPECT_TRUE(has(e, "--disk-dir") && has(e, bad)) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  EXPECT_EQ(entries_in(dir.path), 1u);
  std::ifstream in(file);
  std::string kept((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(kept, "keep me");
}

TEST(TieredSession, ResumingFromAPrefixForksTheSpilledPages) {
  Model model = micro_model(16);
  const int64_t S = model.config().chunk_size;
  TempDir dir;
  MemoryTiers tiers;
  tiers.device_budget = 2 * page_bytes(model.config(), DType::f32);
  tiers.disk_dir = dir.path.string();
  std::vector<int32_t> a = random_tokens(6 * S, 10, 260), b = random_tokens(6 * S, 11, 260);
  std::copy(a.begin(), a.begin() + 4 * S, b.begin());  // b shares a's first 4 chunks
  Session first(model, 2 * S);
  first.set_memory_tiers(tiers);
  Tensor la = first.prefill(a, 2 * S);
  SavedState saved = first.save(la);
  Session second(model, 2 * S);
  second.set_memory_tiers(tiers);
  second.restore(saved, 4 * S);
  Tensor lb = second.prefill(std::span<const int32_t>(b).subspan(4 * S), 2 * S);
  // Fresh, all-resident runs of both prompts.
  Session ra(model), rb(model);
  EXPECT_EQ(max_abs_diff(ra.prefill(a, 2 * S), la), 0.0);
  EXPECT_EQ(max_abs_diff(rb.prefill(b, 2 * S), lb), 0.0);
  // The saved state still continues a, after b wrote its own chunks 4 and 5.
  Session again(model);
  again.set_memory_tiers(tiers);
  again.restore(saved, static_cast<int64_t>(a.size()));
  Session ref(model);
  ref.prefill(a, 2 * S);
  EXPECT_EQ(max_abs_diff(again.step(7), ref.step(7)), 0.0);
}

TEST(TieredSession, ARestoredResidentStateMovesIntoTheSessionsTiers) {
  Model model = micro_model(17, 2);
  const int64_t S = model.config().chunk_size;
  TempDir dir;
  std::vector<int32_t> prompt = random_tokens(9 * S + 3, 12, 260);
  Session resident(model);
  Tensor logits = resident.prefill(prompt, 4 * S);
  SavedState saved = resident.save(logits);  // what a state file holds: one resident memory
  MemoryTiers tiers;
  tiers.device_budget = page_bytes(model.config(), DType::f32);
  tiers.disk_dir = dir.path.string();
  tiers.staging_pages = 4;  // the restored chunks move a slice of staging_pages at a time: 4, 4, 1
  Session tiered(model);
  tiered.set_memory_tiers(tiers);
  EXPECT_EQ(max_abs_diff(tiered.restore(saved, static_cast<int64_t>(prompt.size())), logits), 0.0);
  EXPECT_EQ(tiered.memory_usage().device_pages, 1);
  EXPECT_EQ(tiered.memory_usage().disk_pages, 8);
  for (int32_t t : {5, 77, 201}) EXPECT_EQ(max_abs_diff(tiered.step(t), resident.step(t)), 0.0) << t;
}

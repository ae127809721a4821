// Chunk memory tiers on the GPU: a GPU budget of a few pages puts the rest of the chunk memory in pinned host
// memory and on disk; the selected pages travel on the side stream into compact buffers. Prefill (several segment
// sizes, a prompt ending inside a chunk) and decoding must give exactly the logits and tokens of the all-GPU
// memory, in f32 and bf16.
#include "common/random_tokens.h"
#include "common/hsa_indices.h"
#include "common/temp_dir.h"
#include "gpu/parity.h"
#include "infer/sampler.h"
#include "infer/session.h"
#include "infer/state_file.h"
#include "model/param_spec.h"
#include "model/tiered_attention.h"

#include <gtest/gtest.h>

#include <filesystem>

using namespace hsa;
using namespace hsa::testing;

using hsa::testing::random_tokens;

namespace {

ModelConfig tiny() { return ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/tiny.json"); }

struct Generation {
  std::vector<std::vector<double>> logits;  // after the prompt, then after each generated token (on the host)
  std::vector<int32_t> tokens;
  TierUsage usage;
};

Generation generate(const Model& model, const std::vector<int32_t>& prompt, int64_t segment, int64_t steps,
                    const MemoryTiers* tiers) {
  Session session(model);
  if (tiers) session.set_memory_tiers(*tiers);
  Generation g;
  Rng rng(1);
  Tensor logits = session.prefill(prompt, segment);
  for (int64_t i = 0;; ++i) {
    g.logits.push_back(logits.to(DType::f32).to_vector());
    if (i == steps) break;
    int32_t next = sample_token(logits, SamplingOptions{}, rng);
    g.tokens.push_back(next);
    logits = session.step(next);
  }
  g.usage = session.memory_usage();
  return g;
}

void expect_tiered_equals_all_gpu(DType dtype) {
  ModelConfig c = tiny();
  Model model(c, convert(init_parameters(c, 21, DType::f32), Device::cuda, dtype));
  TempDir dir;
  std::vector<int32_t> prompt = random_tokens(37 * c.chunk_size + 11, 4);  // ends inside a chunk
  MemoryTiers tiers;
  tiers.device_budget = 3 * page_bytes(c, dtype);
  tiers.host_budget = 6 * page_bytes(c, dtype);
  tiers.disk_dir = dir.path.string();
  tiers.cache_pages = 4;
  for (int64_t segment : {int64_t(4096), 5 * c.chunk_size, int64_t(77)}) {
    SCOPED_TRACE(segment);
    Generation want = generate(model, prompt, segment, 24, nullptr);
    Generation got = generate(model, prompt, segment, 24, &tiers);
    ASSERT_EQ(want.logits.size(), got.logits.size());
    for (size_t i = 0; i < want.logits.size(); ++i) EXPECT_EQ(want.logits[i], got.logits[i]) << "logits " << i;
    EXPECT_EQ(want.tokens, got.tokens);
    EXPECT_EQ(got.usage.device_pages, 3);
    EXPECT_EQ(got.usage.host_pages, 6);
    EXPECT_GT(got.usage.disk_pages, 0);
    EXPECT_GT(got.usage.stats.host_reads, 0);
    EXPECT_GT(got.usage.stats.disk_reads, 0);
    EXPECT_GT(got.usage.stats.cache_hits, 0);
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path));
}

}  // namespace

TEST(TieredMemoryParity, F32HostAndDiskTiersGiveTheAllGpuLogitsAndTokens) {
  HSA_REQUIRE_GPU();
  expect_tiered_equals_all_gpu(DType::f32);
}

TEST(TieredMemoryParity, Bf16HostAndDiskTiersGiveTheAllGpuLogitsAndTokens) {
  HSA_REQUIRE_GPU();
  expect_tiered_equals_all_gpu(DType::bf16);
}

// A state file saved from the GPU loads back onto it and continues exactly: its chunk memory loaded onto the GPU or
// into host memory (as `hsa generate` does when the session has tiers), restored into a session with or without
// tiers (a loaded memory moves into them a slice of staging pages at a time). Every token read back must be the
// one saved: the token ids pass through a host copy of a GPU tensor while loading.
TEST(TieredMemoryParity, StateFilesLoadBackOnTheGpuIntoEitherMemory) {
  HSA_REQUIRE_GPU();
  ModelConfig c = tiny();
  Checkpoint ck{c, convert(init_parameters(c, 23, DType::f32), Device::cuda, DType::f32), {}};
  Model model(c, ck.params);
  const ModelFingerprint fp = model_fingerprint(ck, "bytes");
  TempDir dir;
  const std::vector<int32_t> prompt = random_tokens(41 * c.chunk_size + 5, 7);
  Session saver(model);
  Tensor logits = saver.prefill(prompt, 6 * c.chunk_size);
  const std::string path = (dir.path / "s.state").string();
  save_state_file(path, saver.save(logits), fp);
  EXPECT_EQ(state_file_positions(path), static_cast<int64_t>(prompt.size()));
  MemoryTiers tiers;
  tiers.device_budget = 3 * page_bytes(c, DType::f32);
  tiers.host_budget = 6 * page_bytes(c, DType::f32);
  tiers.disk_dir = dir.path.string();
  tiers.staging_pages = 16;
  for (Device memory_device : {Device::cuda, Device::cpu})
    for (const MemoryTiers* t : {static_cast<const MemoryTiers*>(nullptr), static_cast<const MemoryTiers*>(&tiers)}) {
      SCOPED_TRACE(std::string(memory_device == Device::cuda ? "memory on the GPU" : "memory in host memory") +
                   (t ? ", tiered" : ""));
      SavedState loaded = load_state_file(path, fp, model, memory_device);
      EXPECT_EQ(loaded.tokens, prompt);
      Session session(model);
      if (t) session.set_memory_tiers(*t);
      EXPECT_EQ(max_abs_diff(host(session.restore(loaded, static_cast<int64_t>(prompt.size()))), host(logits)), 0.0);
      Session reference = saver;
      for (int32_t token : {5, 77, 201})
        EXPECT_EQ(max_abs_diff(host(session.step(token)), host(reference.step(token))), 0.0) << token;
      if (t) {
        EXPECT_EQ(session.memory_usage().device_pages, 3);
        EXPECT_EQ(session.memory_usage().host_pages, 6);
        EXPECT_EQ(session.memory_usage().disk_pages, 41 - 9);
      }
    }
}

// The attention alone, cut into pieces by a small staging buffer: every piece gathers its pages on the side
// stream while the previous one computes. Pieces of <= 16 tokens may take the decode kernel where the whole
// segment takes the general one, so this compares against the CPU op within the parity tolerance, and against
// the unsplit GPU call exactly when there is a single piece. The segment is cut exactly when it selects more
// distinct chunks than the staging buffer holds (or one token's H * K): its 300 tokens of chunks of 16 reach only
// the first 18 chunks, so staging 8 cuts it and 23 does not (as the CPU test TieredAttention.
// PiecesExactlyWhenTheSelectionExceedsTheStagingBuffer checks too).
TEST(TieredMemoryParity, TieredAttentionPiecesOnTheGpu) {
  HSA_REQUIRE_GPU();
  TempDir dir;
  const int64_t C = 60, S = 16, H = 2, D = 32, HQ = 4, K = 4, L = 300;
  Tensor k = random_input({1, C, S, H, D}, 1, DType::f32), v = random_input({1, C, S, H, D}, 2, DType::f32);
  Tensor lmk = random_input({1, C, H, 8}, 3, DType::f32);
  Tensor q = random_input({1, L, HQ, D}, 4, DType::f32), w = random_input({1, L, H, K}, 5, DType::f32);
  Tensor idx = causal_indices(1, L, H, S, C, K, 6);
  const int64_t selected = distinct_chunks(idx);
  ASSERT_GT(selected, 8);  // so staging 8 gives several pieces
  ops::HsaOut want_cpu = ops::hsa_attention_forward(q, k, v, idx, w, 0.2);
  ops::HsaOut want_gpu = ops::hsa_attention_forward(gpu(q), gpu(k), gpu(v), gpu(idx), gpu(w), 0.2);
  for (int64_t staging : {int64_t(8), int64_t(23), int64_t(4096)}) {
    MemoryTiers t;
    t.device_budget = 7 * 2 * S * H * D * sizeof(float);
    t.host_budget = 11 * 2 * S * H * D * sizeof(float);
    t.disk_dir = dir.path.string();
    t.staging_pages = staging;
    t.cache_pages = 5;
    ChunkMemory m;
    m.set_tiers(t);
    m.append(gpu(k), gpu(v), gpu(lmk));
    TieredAttention attn(m, gpu(idx));
    Tensor got = host(attn.forward(gpu(q), gpu(w), 0.2));
    EXPECT_LT(relative_error(got, want_cpu.out), kF32Tol) << staging;
    EXPECT_EQ(attn.pieces() > 1, selected > std::max(staging, H * K)) << staging << " of " << selected;
    if (staging == 8) EXPECT_GT(attn.pieces(), 1);
    if (attn.pieces() == 1) EXPECT_EQ(max_abs_diff(got, host(want_gpu.out)), 0.0) << staging;
  }
}

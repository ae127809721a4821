// Saved inference states: cutting a state back to a chunk boundary and continuing computes exactly what a fresh
// prefill does; state files round-trip exactly; damaged files and files of another model are refused.
#include "common/random_tokens.h"
#include "common/error_text.h"
#include "common/gradcheck.h"
#include "common/temp_dir.h"
#include "infer/session.h"
#include "infer/state_file.h"
#include "model/param_spec.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace hsa;
using hsa::testing::error_of;
using hsa::testing::has;
using hsa::testing::max_abs_diff;

using hsa::testing::random_tokens;

namespace {

struct Fixture {
  Checkpoint ck;
  Model model;
  int64_t S;
  explicit Fixture(uint64_t seed = 7)
      : ck{ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json"), {}, {}},
        model(ck.config, init_parameters(ck.config, seed, DType::f32)),
        S(ck.config.chunk_size) {
    ck.params = model.params();
  }
};

void expect_equal(const Tensor& a, const Tensor& b) {
  ASSERT_TRUE(a.defined() && b.defined());
  EXPECT_EQ(max_abs_diff(a, b), 0.0);
}

}  // namespace

TEST(SavedState, CutAndContinueEqualsFreshPrefill) {
  Fixture f;
  int64_t interval = 2 * f.S, segment = f.S;
  // Past several intervals and both sliding windows, ending inside a chunk.
  std::vector<int32_t> ids = random_tokens(8 * f.S + 2 * f.ck.config.sliding_window + 5, 3, 260);
  Session full(f.model, interval);
  Tensor fresh = full.prefill(ids, segment);
  SavedState saved = full.save(fresh);
  ASSERT_GE(saved.windows.size(), 4u);
  for (int64_t cut : {interval, 3 * interval, saved.best_resume_point(static_cast<int64_t>(ids.size()) - 1)}) {
    Session resumed(f.model, interval);
    EXPECT_FALSE(resumed.restore(saved, cut).defined());
    EXPECT_EQ(resumed.position(), cut);
    Tensor logits = resumed.prefill(std::span<const int32_t>(ids).subspan(cut), segment);
    expect_equal(logits, fresh);
    // Decoding on from both gives the same logits too (the cut copy appended to shared chunk buffers).
    expect_equal(resumed.step(5), Session(full).step(5));
  }
  // The saved state itself is unchanged by the copies that appended after it.
  Session again(f.model, interval);
  expect_equal(again.restore(saved, static_cast<int64_t>(ids.size())), fresh);
  Session reference(f.model, interval);
  reference.prefill(ids, segment);
  expect_equal(again.step(9), reference.step(9));
}

TEST(SavedState, FileRoundTripContinuesIdentically) {
  Fixture f;
  hsa::testing::TempDir dir;
  ModelFingerprint fp = model_fingerprint(f.ck, "bytes");
  std::vector<int32_t> ids = random_tokens(5 * f.S + 7, 4, 260);
  Session session(f.model, 2 * f.S);
  Tensor logits = session.prefill(ids, f.S);
  save_state_file(dir.file("a.state"), session.save(logits), fp);
  SavedState loaded = load_state_file(dir.file("a.state"), fp, f.model);
  EXPECT_EQ(loaded.tokens, ids);
  EXPECT_EQ(loaded.windows.size(), 2u);
  Session restored(f.model);
  expect_equal(restored.restore(loaded, static_cast<int64_t>(ids.size())), logits);
  for (int32_t t : {1, 2, 3}) expect_equal(restored.step(t), session.step(t));
  // Resuming from a window snapshot in the file works too.
  Session cut(f.model);
  cut.restore(loaded, 4 * f.S);
  Session reference(f.model);
  expect_equal(cut.prefill(std::span<const int32_t>(ids).subspan(4 * f.S), f.S), reference.prefill(ids, f.S));
}

TEST(SavedState, DamagedOrForeignFilesAreRefused) {
  Fixture f;
  hsa::testing::TempDir dir;
  ModelFingerprint fp = model_fingerprint(f.ck, "bytes");
  std::vector<int32_t> ids = random_tokens(3 * f.S + 1, 5, 260);
  Session session(f.model);
  std::string path = dir.file("s.state");
  save_state_file(path, session.save(session.prefill(ids, f.S)), fp);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir.file(name.c_str()), std::ios::binary) << content;
    return dir.file(name.c_str());
  };
  std::string corrupt = bytes;
  corrupt[corrupt.size() / 2] ^= 0x40;
  std::string p1 = write("corrupt.state", corrupt);
  std::string e1 = error_of([&] { load_state_file(p1, fp, f.model); });
  EXPECT_TRUE(has(e1, p1) && has(e1, "checksum")) << e1;
  std::string p2 = write("short.state", bytes.substr(0, bytes.size() - 100));
  std::string e2 = error_of([&] { load_state_file(p2, fp, f.model); });
  EXPECT_TRUE(has(e2, p2) && has(e2, "truncated")) << e2;
  std::string p3 = write("junk.state", "not a state file at all, just some text");
  EXPECT_TRUE(has(error_of([&] { load_state_file(p3, fp, f.model); }), "not an hsa state file"));
  // Another model: same config, other weights.
  Fixture other(8);
  ModelFingerprint other_fp = model_fingerprint(other.ck, "bytes");
  EXPECT_NE(other_fp.hash, fp.hash);
  std::string e4 = error_of([&] { load_state_file(path, other_fp, other.model); });
  EXPECT_TRUE(has(e4, path) && has(e4, "another model")) << e4;
  std::string e5 = error_of([&] { load_state_file(path, ModelFingerprint{fp.hash, "other.json"}, f.model); });
  EXPECT_TRUE(has(e5, "tokenizer")) << e5;
  EXPECT_TRUE(has(error_of([&] { load_state_file(dir.file("missing.state"), fp, f.model); }), "missing.state"));
}

// A model's fingerprint depends on the options it uses, not on the options a build knows: a key at its default
// value (as a newer build writes for an option an older model never had) leaves it unchanged, a changed option
// changes it.
TEST(SavedState, FingerprintIgnoresOptionsAtTheirDefaults) {
  Fixture f;
  const std::string base = model_fingerprint(f.ck, "bytes").hash;
  Checkpoint same = f.ck;
  same.config.chunk_weighting = ModelConfig{}.chunk_weighting;
  same.config.hsa_retrieval_norm = ModelConfig{}.hsa_retrieval_norm;
  EXPECT_EQ(model_fingerprint(same, "bytes").hash, base);
  Checkpoint other = f.ck;
  other.config.chunk_weighting = other.config.chunk_weighting == "softmax" ? "stick_breaking" : "softmax";
  EXPECT_NE(model_fingerprint(other, "bytes").hash, base);
}

// What a run plans its memory for before loading a state: the positions, read from the header alone (a file cut
// after its header still answers; one cut inside it, or no state file at all, is refused naming the file).
TEST(SavedState, PositionsComeFromTheHeaderAlone) {
  Fixture f;
  hsa::testing::TempDir dir;
  ModelFingerprint fp = model_fingerprint(f.ck, "bytes");
  std::vector<int32_t> ids = random_tokens(6 * f.S + 3, 6, 260);
  Session session(f.model);
  std::string path = dir.file("s.state");
  save_state_file(path, session.save(session.prefill(ids, f.S)), fp);
  EXPECT_EQ(state_file_positions(path), static_cast<int64_t>(ids.size()));
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::string cut = dir.file("cut.state");
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() - 200);
  EXPECT_EQ(state_file_positions(cut), static_cast<int64_t>(ids.size()));
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, 40);
  std::string e = error_of([&] { state_file_positions(cut); });
  EXPECT_TRUE(has(e, cut) && has(e, "corrupt")) << e;
  std::ofstream(cut, std::ios::binary) << "HSA";
  EXPECT_TRUE(has(error_of([&] { state_file_positions(cut); }), "not an hsa state file"));
  EXPECT_TRUE(has(error_of([&] { state_file_positions(dir.file("missing.state")); }), "missing.state"));
  // The chunk memory may be loaded into host memory (for a session that moves it into its tiers).
  SavedState host = load_state_file(path, fp, f.model, Device::cpu);
  EXPECT_EQ(host.state.memory.memory.num_chunks(), 6);
  EXPECT_EQ(host.state.memory.memory.landmarks().device(), Device::cpu);
}

TEST(SavedState, KeptWindowsAreResumePointsToo) {
  Fixture f;
  int64_t interval = 4 * f.S, segment = f.S;
  std::vector<int32_t> ids = random_tokens(9 * f.S + 3, 5, 260);
  Session full(f.model, interval);
  Tensor fresh;
  for (int64_t pos = 0; pos < static_cast<int64_t>(ids.size());) {
    int64_t len = std::min<int64_t>(segment, static_cast<int64_t>(ids.size()) - pos);
    fresh = full.prefill(std::span<const int32_t>(ids).subspan(pos, len), segment);
    pos += len;
    // What the server does in a prompt's last interval (a chunk-aligned position only).
    if (static_cast<int64_t>(ids.size()) - pos < interval) EXPECT_EQ(full.keep_windows(), pos % f.S == 0) << pos;
  }
  SavedState saved = full.save(fresh);
  // Snapshots at the interval (4S, 8S) and the kept segment boundaries of the last interval (6S..9S).
  std::vector<int64_t> kept;
  for (const auto& [p, layers] : saved.windows) kept.push_back(p);
  EXPECT_EQ(kept, (std::vector<int64_t>{4 * f.S, 6 * f.S, 7 * f.S, 8 * f.S, 9 * f.S}));
  EXPECT_EQ(saved.best_resume_point(9 * f.S + 1), 9 * f.S);
  EXPECT_EQ(saved.best_resume_point(7 * f.S + 5), 7 * f.S);
  // Resuming from a kept position computes what the full prefill did.
  for (int64_t cut : {7 * f.S, 9 * f.S}) {
    Session resumed(f.model, interval);
    EXPECT_FALSE(resumed.restore(saved, cut).defined());
    expect_equal(resumed.prefill(std::span<const int32_t>(ids).subspan(cut), segment), fresh);
  }
  // Not at a chunk boundary (pending rows) or at position 0: nothing kept.
  Session odd(f.model, interval);
  EXPECT_FALSE(odd.keep_windows());
  odd.prefill(std::span<const int32_t>(ids).subspan(0, 3), segment);
  EXPECT_FALSE(odd.keep_windows());
}

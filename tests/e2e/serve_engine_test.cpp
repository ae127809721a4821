// The server's engine without HTTP: a follow-up prompt that changes only the end of an earlier one resumes at the
// last segment boundary before it diverges (not the last snapshot interval) and answers what an uncached run does;
// slot files are restored only within the positions the memory plan gives a session.
#include "infer/state_file.h"
#include "model/param_spec.h"
#include "serve/engine.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <future>

#include <unistd.h>

using namespace hsa;

namespace {

GenerationResult run(Engine& engine, std::vector<int32_t> prompt, bool use_cache) {
  GenerationRequest request;
  request.prompt = std::move(prompt);
  request.max_tokens = 8;
  request.use_cache = use_cache;
  std::promise<GenerationResult> promise;
  GenerationCallbacks callbacks;
  callbacks.done = [&](const GenerationResult& r) { promise.set_value(r); };
  EXPECT_TRUE(engine.submit(request, callbacks));
  return promise.get_future().get();
}

}  // namespace

TEST(ServeEngine, FollowUpResumesAtTheLastSegmentBeforeItDiverges) {
  Checkpoint ck{ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json"), {}, {}};
  Model model(ck.config, init_parameters(ck.config, 11, DType::f32));
  ck.params = model.params();
  ByteTokenizer tokenizer;
  const int64_t S = ck.config.chunk_size;
  EngineOptions options;
  options.segment = 2 * S;
  options.snapshot_interval = 8 * S;
  Engine engine(model, tokenizer, model_fingerprint(ck, tokenizer.name()), options);

  Rng rng(3);
  std::vector<int32_t> document(21 * S + 5);  // snapshots at 8S and 16S; segment boundaries 14S, 16S, ... 20S
  for (auto& t : document) t = static_cast<int32_t>(rng.below(256));
  std::vector<int32_t> first = document, second = document;
  first.insert(first.end(), {1, 2, 3, 4, 5, 6, 7});
  second.insert(second.end(), {9, 8, 7});

  GenerationResult a = run(engine, first, true);
  ASSERT_EQ(a.finish_reason, "length") << a.error;
  EXPECT_EQ(a.cached_tokens, 0);
  // The common prefix is the document (21S + 5): resumed at 20S, the last segment boundary inside it (the
  // interval alone would give 16S).
  GenerationResult b = run(engine, second, true);
  ASSERT_EQ(b.finish_reason, "length") << b.error;
  EXPECT_EQ(b.cached_tokens, 20 * S);
  GenerationResult uncached = run(engine, second, false);
  EXPECT_EQ(uncached.cached_tokens, 0);
  EXPECT_EQ(b.text, uncached.text);
  // A follow-up that extends the whole prompt only prefills what it adds.
  std::vector<int32_t> longer = first;
  longer.push_back(42);
  EXPECT_EQ(run(engine, longer, true).cached_tokens, static_cast<int64_t>(first.size()));
  engine.shutdown(0);
}

// A slot file holding more positions than the memory plan gives one session is refused from its header, before its
// tensors are loaded; within the plan it is restored.
TEST(ServeEngine, RestoringASlotBeyondThePlannedPositionsIsRefused) {
  Checkpoint ck{ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json"), {}, {}};
  Model model(ck.config, init_parameters(ck.config, 12, DType::f32));
  ck.params = model.params();
  ByteTokenizer tokenizer;
  const int64_t S = ck.config.chunk_size;
  const ModelFingerprint fp = model_fingerprint(ck, tokenizer.name());
  EngineOptions options;
  options.segment = 2 * S;
  options.snapshot_interval = 4 * S;
  Engine engine(model, tokenizer, fp, options);
  std::vector<int32_t> prompt(5 * S + 3, 65);
  ASSERT_EQ(run(engine, prompt, true).finish_reason, "length");
  const std::string path = ::testing::TempDir() + "hsa_serve_slot_" + std::to_string(::getpid()) + ".state";
  const size_t saved = engine.save_slot(0, path);  // the prompt and the 7 generated tokens fed back
  EXPECT_EQ(saved, prompt.size() + 7);
  options.max_positions = static_cast<int64_t>(saved) - 1;
  Engine small(model, tokenizer, fp, options);
  std::string error;
  try {
    small.restore_slot(0, path);
  } catch (const Error& e) {
    error = e.what();
  }
  const std::string want = "holds " + std::to_string(saved) + " positions, more than the " + std::to_string(saved - 1);
  EXPECT_NE(error.find(want), std::string::npos) << error;
  options.max_positions = static_cast<int64_t>(saved);
  Engine enough(model, tokenizer, fp, options);
  EXPECT_EQ(enough.restore_slot(0, path), saved);
  std::remove(path.c_str());
  engine.shutdown(0);
  small.shutdown(0);
  enough.shutdown(0);
}

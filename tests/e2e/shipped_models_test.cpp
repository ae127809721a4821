// The models shipped in models/ load (bf16 weights too), and answer pass keys at their training length on the CPU,
// as `hsa demo` does: a regression check on the shipped files and on the inference path they go through.
#include "infer/greedy.h"
#include "infer/session.h"
#include "ops/cross_entropy.h"
#include "model/placement.h"
#include "model/checkpoint.h"
#include "text/filler.h"
#include "text/tasks.h"
#include "text/tokenizer.h"

#include <gtest/gtest.h>

#include <memory>
#include <span>
#include <string>

using namespace hsa;

namespace {

// `hsa demo`'s seeds for samples 0 and 1 at one length: both were answered by both shipped models when measured.
int correct_pass_keys(const std::string& name, int64_t length) {
  Checkpoint ck = load_checkpoint(std::string(HSA_SOURCE_DIR) + "/models/" + name);
  EXPECT_EQ(ck.config.max_train_length, length) << name;
  Model model = place_model(ck, resolve_placement("cpu", "f32"));
  FillerText filler;
  ByteTokenizer tok;
  int correct = 0;
  for (uint64_t s = 0; s < 2; ++s) {
    TaskSample sample = make_task_sample(TaskKind::passkey, length, 2026 + 7919 * s + uint64_t(length), filler);
    std::span<const int32_t> prompt(sample.tokens.data(), sample.prompt_length);
    GreedyAnswer answer = answer_greedily(model, prompt, int64_t(sample.answer.size()), 4096);
    correct += tok.decode(answer.tokens) == sample.answer;
  }
  return correct;
}

}  // namespace

TEST(ShippedModels, PasskeyTinyAnswersAtItsTrainingLength) { EXPECT_EQ(correct_pass_keys("passkey-tiny", 4096), 2); }

TEST(ShippedModels, PasskeySmallInBf16AnswersAtItsTrainingLength) {
  EXPECT_EQ(load_checkpoint(std::string(HSA_SOURCE_DIR) + "/models/passkey-small").params.at("embed.weight").dtype(),
            DType::bf16);
  EXPECT_EQ(correct_pass_keys("passkey-small", 4096), 2);
}

// The language model loads from its bf16 shards with its BPE tokenizer and predicts English it never trained on
// far better than chance (ln 8192 = 9.01 nats): a regression check on the shards, the tokenizer and the encoder.
TEST(ShippedModels, LanguageModelPredictsUnseenEnglish) {
  Checkpoint ck = load_checkpoint(std::string(HSA_SOURCE_DIR) + "/models/lm-20m");
  EXPECT_EQ(ck.config.chunk_encoder_layers, 1);
  std::unique_ptr<Tokenizer> tok =
      load_tokenizer(ck.config.tokenizer, std::string(HSA_SOURCE_DIR) + "/models/lm-20m");
  Model model = place_model(ck, resolve_placement("cpu", "f32"));
  const std::string text =
      "The committee met on Tuesday to discuss the new library. Most members agreed that the old building was too "
      "small for the number of readers, and that a larger room for children would be useful. After a long "
      "discussion, they decided to ask the city for money to build an extension on the north side.";
  std::vector<int32_t> ids = tok->encode(text, /*add_bos=*/true);
  ASSERT_GT(ids.size(), 64u);  // more than one chunk: the encoder and the memory run
  EXPECT_EQ(tok->decode(std::span<const int32_t>(ids).subspan(1)), text);
  Session session(model);
  Tensor logits = session.feed(std::span<const int32_t>(ids).first(ids.size() - 1));
  std::vector<int32_t> targets(ids.begin() + 1, ids.end());
  ops::CrossEntropyOut ce = ops::cross_entropy_forward(
      logits, Tensor::from_i32(targets, {static_cast<int64_t>(targets.size())}));
  EXPECT_LT(ce.loss, 5.0);
  EXPECT_GT(ce.loss, 1.0);
}

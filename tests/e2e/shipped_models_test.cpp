// The models shipped in models/ load (bf16 weights too), and answer pass keys at their training length on the CPU,
// as `hsa demo` does: a regression check on the shipped files and on the inference path they go through.
#include "infer/greedy.h"
#include "model/placement.h"
#include "model/checkpoint.h"
#include "text/filler.h"
#include "text/tasks.h"
#include "text/tokenizer.h"

#include <gtest/gtest.h>

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

#include "text/needle_filter.h"

#include "eval/ruler.h"
#include "text/tasks.h"
#include "text/tokenizer.h"

#include <gtest/gtest.h>

using hsa::data::looks_like_needle;

namespace {

// The sentence of `prompt` holding the first occurrence of `answer`, with the answer itself cut out: what the
// filter must recognise even without the digits of the answer.
std::string needle_without_answer(const std::string& prompt, const std::string& answer) {
  const size_t at = prompt.find(answer);
  EXPECT_NE(at, std::string::npos) << answer;
  if (at == std::string::npos) return {};
  size_t start = at;
  auto sentence_start = [&](size_t p) {
    return p == 0 || prompt[p - 1] == '\n' || (p >= 2 && prompt[p - 2] == '.' && prompt[p - 1] == ' ');
  };
  while (!sentence_start(start)) --start;
  return prompt.substr(start, at - start);
}

}  // namespace

TEST(LooksLikeNeedle, TaskPhrasesAndDigitRuns) {
  EXPECT_TRUE(looks_like_needle("Remember the pass key before you leave."));
  EXPECT_TRUE(looks_like_needle("The PassKey field is optional."));
  EXPECT_TRUE(looks_like_needle("Some Special Magic values are hidden."));
  EXPECT_TRUE(looks_like_needle("Every file starts with a magic number."));
  EXPECT_TRUE(looks_like_needle("Set VAR X to one."));
  EXPECT_TRUE(looks_like_needle("It cost 12345 dollars."));
  EXPECT_FALSE(looks_like_needle("It cost 1234 dollars in 1999."));
  EXPECT_FALSE(looks_like_needle("The variable was passed by keyword; magic happens."));
  EXPECT_FALSE(looks_like_needle("var x is lower case."));
}

TEST(LooksLikeNeedle, CatchesTheNeedleOfEveryTrainingTask) {
  hsa::FillerText filler;
  for (hsa::TaskKind kind : hsa::legacy_task_kinds()) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      hsa::TaskSample s = hsa::make_task_sample(kind, 2048, seed, filler);
      const std::string prompt = hsa::ByteTokenizer().decode(
          std::span<const int32_t>(s.tokens).subspan(1, static_cast<size_t>(s.prompt_length - 1)));
      const std::string needle = needle_without_answer(prompt, s.answer);
      EXPECT_TRUE(looks_like_needle(needle)) << hsa::task_kind_name(kind) << " seed " << seed << ": " << needle;
    }
  }
}

TEST(LooksLikeNeedle, CatchesTheNeedlesOfEveryRulerRetrievalTask) {
  hsa::FillerText filler;
  for (const hsa::eval::RulerTaskInfo& info : hsa::eval::ruler_tasks()) {
    if (info.task == hsa::eval::RulerTask::cwe || info.task == hsa::eval::RulerTask::fwe) continue;  // no needles
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      hsa::eval::RulerSample s = hsa::eval::make_ruler_sample(info.task, 4096, seed, filler);
      for (const std::string& expected : s.expected) {
        const std::string needle = needle_without_answer(s.prompt, expected);
        EXPECT_TRUE(looks_like_needle(needle)) << info.name << " seed " << seed << ": " << needle;
      }
    }
  }
}

TEST(LooksLikeNeedle, LeavesTheBuiltInFillerAlone) {
  hsa::Rng rng(3);
  const std::string text = hsa::FillerText().take(20000, rng);
  size_t from = 0, lines = 0;
  while (from < text.size()) {
    size_t end = text.find('\n', from);
    if (end == std::string::npos) end = text.size();
    EXPECT_FALSE(looks_like_needle(std::string_view(text).substr(from, end - from)));
    from = end + 1;
    ++lines;
  }
  EXPECT_GT(lines, 10u);
}

#include "text/tasks.h"
#include "text/tokenizer.h"

#include <hsa/error.h>

#include <gtest/gtest.h>

#include <map>
#include <string>

using namespace hsa;

namespace {

size_t count_of(const std::string& haystack, const std::string& needle) {
  size_t count = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++count;
  return count;
}

std::string digits_at(const std::string& text, size_t pos) {
  std::string d;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') d.push_back(text[pos++]);
  return d;
}

std::string prompt_text(const TaskSample& s) {
  ByteTokenizer tok;
  EXPECT_EQ(s.tokens.at(0), ByteTokenizer::kBos);
  return tok.decode(std::span<const int32_t>(s.tokens).subspan(1, static_cast<size_t>(s.prompt_length - 1)));
}

// Answers the question from the context alone, the way a test reader would; also returns the needle it used
// so the caller can check the needle occurs exactly once.
std::string solve(TaskKind kind, const std::string& prompt, std::string* needle) {
  switch (kind) {
    case TaskKind::passkey: {
      const std::string key = "The pass key is ";
      size_t at = prompt.find(key);
      EXPECT_NE(at, std::string::npos);
      std::string answer = digits_at(prompt, at + key.size());
      *needle = key + answer + ". Remember it. ";
      EXPECT_TRUE(prompt.ends_with("\nWhat is the pass key? The pass key is ")) << prompt;
      return answer;
    }
    case TaskKind::multikey_niah: {
      const std::string q = "\nWhat is the special magic number for ";
      size_t qa = prompt.rfind(q);
      EXPECT_NE(qa, std::string::npos);
      std::string word = prompt.substr(qa + q.size(), prompt.find('?', qa) - qa - q.size());
      std::string key = "The special magic number for " + word + " is ";
      EXPECT_TRUE(prompt.ends_with(key)) << prompt;
      size_t at = prompt.find(key);
      EXPECT_LT(at, qa);
      std::string answer = digits_at(prompt, at + key.size());
      *needle = key + answer + ". ";
      EXPECT_GE(count_of(prompt, "The special magic number for "), 3u + 1u);  // >= 3 needles + the answer prefix
      return answer;
    }
    case TaskKind::variable_tracking: {
      const std::string q = "\nWhat is the value of VAR ";
      size_t qa = prompt.rfind(q);
      EXPECT_NE(qa, std::string::npos);
      std::string var = prompt.substr(qa + q.size(), 3);
      std::string context = prompt.substr(0, qa);
      int hops = 0;
      for (;;) {  // follow the chain back to the number
        std::string assign = "VAR " + var + " = ";
        EXPECT_EQ(count_of(context, assign), 1u) << var;
        size_t at = context.find(assign);
        if (at == std::string::npos) return "";
        size_t rhs = at + assign.size();
        if (context.compare(rhs, 4, "VAR ") == 0) {
          var = context.substr(rhs + 4, 3);
          ++hops;
          continue;
        }
        std::string answer = digits_at(context, rhs);
        *needle = assign + answer + ". ";
        EXPECT_GE(hops, 2);
        EXPECT_LE(hops, 4);
        return answer;
      }
    }
  }
  return "";
}

}  // namespace

TEST(Tasks, ExactLengthNeedleOnceAnswerRecoverable) {
  FillerText filler;
  for (TaskKind kind : legacy_task_kinds()) {
    // multikey_niah needs ~230 tokens for its minimum of 3 needles + question, so it starts at 256.
    for (int64_t length : {kind == TaskKind::multikey_niah ? int64_t{256} : int64_t{128}, int64_t{1000},
                           int64_t{5000}}) {
      for (uint64_t seed : {1u, 2u, 3u}) {
        SCOPED_TRACE(task_kind_name(kind) + " length " + std::to_string(length) + " seed " + std::to_string(seed));
        TaskSample s = make_task_sample(kind, length, seed, filler);
        ASSERT_EQ(static_cast<int64_t>(s.tokens.size()), length);
        ASSERT_EQ(s.answer_mask.size(), s.tokens.size());
        ASSERT_EQ(s.prompt_length + static_cast<int64_t>(s.answer.size()), length);
        for (int64_t i = 0; i < length; ++i)
          EXPECT_EQ(s.answer_mask[i], i >= s.prompt_length ? 1 : 0) << "position " << i;
        ByteTokenizer tok;
        std::string answer_text =
            tok.decode(std::span<const int32_t>(s.tokens).subspan(static_cast<size_t>(s.prompt_length)));
        EXPECT_EQ(answer_text, s.answer);
        for (size_t i = 1; i < s.tokens.size(); ++i) {
          EXPECT_GE(s.tokens[i], 0);
          EXPECT_LT(s.tokens[i], 256);
        }
        std::string prompt = prompt_text(s);
        std::string needle;
        EXPECT_EQ(solve(kind, prompt, &needle), s.answer);
        EXPECT_EQ(count_of(prompt, needle), 1u) << needle;
        EXPECT_EQ(s.answer.size(), kind == TaskKind::multikey_niah ? 7u : 5u);
      }
    }
  }
}

TEST(Tasks, DeterministicBySeedAndDifferentAcrossSeeds) {
  FillerText filler;
  for (TaskKind kind : legacy_task_kinds()) {
    TaskSample a = make_task_sample(kind, 700, 42, filler);
    TaskSample b = make_task_sample(kind, 700, 42, filler);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.answer, b.answer);
    std::map<std::string, int> answers;
    for (uint64_t seed = 0; seed < 20; ++seed) {
      TaskSample c = make_task_sample(kind, 700, seed, filler);
      EXPECT_NE(seed == 42 ? b.tokens : c.tokens, a.tokens);
      ++answers[c.answer];
    }
    EXPECT_GE(answers.size(), 18u) << task_kind_name(kind);
  }
}

TEST(Tasks, NeedleDepthVariesWithSeed) {
  FillerText filler;
  std::map<size_t, int> depths;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::string prompt = prompt_text(make_task_sample(TaskKind::passkey, 2000, seed, filler));
    depths[prompt.find("The pass key is ") / 200]++;
  }
  EXPECT_GE(depths.size(), 5u);
}

TEST(Tasks, TooShortLengthIsAClearError) {
  FillerText filler;
  for (TaskKind kind : legacy_task_kinds()) {
    try {
      make_task_sample(kind, 40, 1, filler);
      FAIL() << "expected an error for " << task_kind_name(kind);
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(task_kind_name(kind)), std::string::npos) << msg;
      EXPECT_NE(msg.find("needs at least"), std::string::npos) << msg;
    }
  }
  // The smallest valid length has no filler at all and still works.
  TaskSample s = make_task_sample(TaskKind::passkey, 1 + 36 + 39 + 5, 3, filler);
  EXPECT_EQ(s.tokens.size(), 81u);
  EXPECT_THROW(make_task_sample(TaskKind::passkey, 80, 3, filler), Error);
}

TEST(Tasks, ParseNames) {
  for (TaskKind kind : all_task_kinds()) EXPECT_EQ(parse_task_kind(task_kind_name(kind)), kind);
  try {
    parse_task_kind("needle");
    FAIL();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("needle"), std::string::npos);
    EXPECT_NE(msg.find("variable_tracking"), std::string::npos);
  }
}

TEST(Tasks, CorpusFillerIsExactAndStartsAtLineBoundary) {
  FillerText filler(std::string("first line of the corpus\nsecond line here\nthird one\n"));
  Rng rng(5);
  for (int64_t n : {0, 7, 30, 200}) {
    std::string text = filler.take(n, rng);
    EXPECT_EQ(static_cast<int64_t>(text.size()), n);
    if (n >= 5) EXPECT_TRUE(text.starts_with("first") || text.starts_with("secon") || text.starts_with("third"))
        << text;
  }
  TaskSample s = make_task_sample(TaskKind::variable_tracking, 600, 9, filler);
  EXPECT_EQ(s.tokens.size(), 600u);
  FillerText builtin;
  Rng r1(3), r2(3);
  EXPECT_EQ(builtin.take(1234, r1), builtin.take(1234, r2));
  EXPECT_THROW(FillerText(std::string()), Error);
}

#include "eval/ruler.h"

#include <hsa/error.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

using namespace hsa;
using namespace hsa::eval;

namespace {

size_t count_of(const std::string& haystack, const std::string& needle) {
  size_t count = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++count;
  return count;
}

// Text between `start` (first occurrence, exclusive) and `end` (next occurrence after it).
std::string between(const std::string& text, const std::string& start, const std::string& end) {
  size_t a = text.find(start);
  EXPECT_NE(a, std::string::npos) << start;
  if (a == std::string::npos) return {};
  a += start.size();
  size_t b = text.find(end, a);
  EXPECT_NE(b, std::string::npos) << end;
  return text.substr(a, b == std::string::npos ? std::string::npos : b - a);
}

// Value of needle "... for <key> is: <value>. " in the context; checks the needle occurs exactly once.
std::vector<std::string> values_for(const std::string& prompt, const std::string& key, const std::string& what) {
  const std::string prefix = "One of the special magic " + what + " for " + key + " is: ";
  std::vector<std::string> out;
  for (size_t at = prompt.find(prefix); at != std::string::npos; at = prompt.find(prefix, at + 1)) {
    size_t from = at + prefix.size();
    size_t end = prompt.find(". ", from);
    out.push_back(prompt.substr(from, end - from));
    EXPECT_EQ(count_of(prompt, prefix + out.back() + ". "), 1u) << "needle for " << key;
  }
  return out;
}

std::vector<std::string> split_keys(const std::string& list) {  // "a, b, c and d"
  std::vector<std::string> keys;
  std::string rest = list;
  size_t and_at = rest.rfind(" and ");
  std::string last = and_at == std::string::npos ? "" : rest.substr(and_at + 5);
  rest = and_at == std::string::npos ? rest : rest.substr(0, and_at);
  std::stringstream ss(rest);
  for (std::string k; std::getline(ss, k, ',');) {
    while (!k.empty() && k[0] == ' ') k.erase(0, 1);
    keys.push_back(k);
  }
  if (!last.empty()) keys.push_back(last);
  return keys;
}

// Top-n words by count of a word stream; checks the n-th count is strictly ahead of the (n+1)-th.
std::set<std::string> top_words(const std::vector<std::string>& words, size_t n) {
  std::map<std::string, int> counts;
  for (const std::string& w : words) ++counts[w];
  std::vector<std::pair<int, std::string>> by_count;
  for (auto& [w, c] : counts) by_count.push_back({c, w});
  std::sort(by_count.rbegin(), by_count.rend());
  EXPECT_GT(by_count.size(), n);
  if (by_count.size() > n) {
    EXPECT_GT(by_count[n - 1].first, by_count[n].first) << "top " << n << " is ambiguous";
  }
  std::set<std::string> top;
  for (size_t i = 0; i < n && i < by_count.size(); ++i) top.insert(by_count[i].second);
  return top;
}

// Answers the sample from its prompt alone, the way a careful reader would.
std::vector<std::string> solve(RulerTask task, const std::string& p) {
  switch (task) {
    case RulerTask::niah_single_1:
    case RulerTask::niah_single_2:
    case RulerTask::niah_multikey_2:
      return values_for(p, between(p, "What is the special magic number for ", " mentioned"), "numbers");
    case RulerTask::niah_single_3:
    case RulerTask::niah_multikey_3:
      return values_for(p, between(p, "What is the special magic uuid for ", " mentioned"), "uuids");
    case RulerTask::niah_multikey_1: {
      const std::string key = between(p, "\nWhat is the special magic number for ", "?");
      const std::string needle = "The special magic number for " + key + " is ";
      std::string value = between(p, needle, ".");
      EXPECT_EQ(count_of(p, needle + value + ". "), 1u);
      return {value};
    }
    case RulerTask::niah_multivalue:
      return values_for(p, between(p, "What are all the special magic numbers for ", " mentioned"), "numbers");
    case RulerTask::niah_multiquery: {
      std::vector<std::string> out;
      const std::string keys = between(p, "What are all the special magic numbers for ", " mentioned");
      for (const std::string& key : split_keys(keys)) {
        std::vector<std::string> v = values_for(p, key, "numbers");
        EXPECT_EQ(v.size(), 1u) << key;
        out.insert(out.end(), v.begin(), v.end());
      }
      return out;
    }
    case RulerTask::vt: {
      const std::string value = between(p, "assigned the value ", " in the text");
      std::string name = between(p, "", " = " + value + ". ");
      name = name.substr(name.rfind("VAR ") + 4);
      EXPECT_EQ(count_of(p, "VAR " + name + " = " + value + ". "), 1u);
      std::vector<std::string> chain{name};
      for (;;) {
        const std::string ref = " = VAR " + chain.back() + ". ";
        size_t at = p.find(ref);
        if (at == std::string::npos) break;
        EXPECT_EQ(count_of(p, ref), 1u);
        size_t start = p.rfind("VAR ", at) + 4;
        chain.push_back(p.substr(start, at - start));
      }
      return chain;
    }
    case RulerTask::cwe: {
      std::stringstream ss(between(p, "most often.\n", "\nQuestion:"));
      std::vector<std::string> words;
      int expected_index = 1;
      for (std::string num, word; ss >> num >> word; ++expected_index) {
        EXPECT_EQ(num, std::to_string(expected_index) + ".");
        words.push_back(word);
      }
      std::set<std::string> top = top_words(words, 10);
      return {top.begin(), top.end()};
    }
    case RulerTask::fwe: {
      std::stringstream ss(between(p, "coded words.\n", "\nQuestion:"));
      std::vector<std::string> words;
      for (std::string w; ss >> w;) words.push_back(w);
      std::set<std::string> top = top_words(words, 3);
      return {top.begin(), top.end()};
    }
  }
  return {};
}

class RulerTaskTest : public ::testing::TestWithParam<RulerTask> {};

TEST_P(RulerTaskTest, DeterministicBySeed) {
  FillerText filler;
  RulerSample a = make_ruler_sample(GetParam(), 2048, 7, filler);
  RulerSample b = make_ruler_sample(GetParam(), 2048, 7, filler);
  RulerSample c = make_ruler_sample(GetParam(), 2048, 8, filler);
  EXPECT_EQ(a.prompt, b.prompt);
  EXPECT_EQ(a.expected, b.expected);
  EXPECT_NE(a.prompt, c.prompt);
}

TEST_P(RulerTaskTest, LengthWithinOneChunkAndAnswersRecoverable) {
  FillerText filler;
  for (int64_t length : {1024, 1500, 4096, 16384}) {
    for (uint64_t seed : {1, 2, 3}) {
      SCOPED_TRACE(testing::Message() << ruler_task_name(GetParam()) << " length " << length << " seed " << seed);
      RulerSample s = make_ruler_sample(GetParam(), length, seed, filler);
      const int64_t n = static_cast<int64_t>(s.tokens().size());
      EXPECT_LE(n, length);
      EXPECT_GE(n, length - 64);
      ASSERT_FALSE(s.expected.empty());
      std::vector<std::string> solved = solve(GetParam(), s.prompt);
      std::vector<std::string> want = s.expected;
      std::sort(solved.begin(), solved.end());
      std::sort(want.begin(), want.end());
      EXPECT_EQ(solved, want);
      // The answers are in the prompt and a perfect answer scores 1.
      std::string perfect;
      for (const std::string& e : s.expected) perfect += e + ", ";
      EXPECT_DOUBLE_EQ(ruler_score(s.expected, perfect), 1.0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTasks, RulerTaskTest,
                         ::testing::Values(RulerTask::niah_single_1, RulerTask::niah_single_2, RulerTask::niah_single_3,
                                           RulerTask::niah_multikey_1, RulerTask::niah_multikey_2,
                                           RulerTask::niah_multikey_3, RulerTask::niah_multivalue,
                                           RulerTask::niah_multiquery, RulerTask::vt, RulerTask::cwe, RulerTask::fwe),
                         [](const auto& info) { return ruler_task_name(info.param); });

TEST(Ruler, ExpectedCountsPerTask) {
  FillerText filler;
  EXPECT_EQ(make_ruler_sample(RulerTask::niah_multivalue, 2048, 1, filler).expected.size(), 4u);
  EXPECT_EQ(make_ruler_sample(RulerTask::niah_multiquery, 2048, 1, filler).expected.size(), 4u);
  EXPECT_EQ(make_ruler_sample(RulerTask::vt, 2048, 1, filler).expected.size(), 5u);
  EXPECT_EQ(make_ruler_sample(RulerTask::cwe, 2048, 1, filler).expected.size(), 10u);
  EXPECT_EQ(make_ruler_sample(RulerTask::fwe, 2048, 1, filler).expected.size(), 3u);
  // The needle haystack really is made of many needles.
  RulerSample mk2 = make_ruler_sample(RulerTask::niah_multikey_2, 4096, 1, filler);
  EXPECT_GT(count_of(mk2.prompt, "One of the special magic numbers for "), 40u);
  RulerSample s1 = make_ruler_sample(RulerTask::niah_single_1, 2048, 1, filler);
  EXPECT_GT(count_of(s1.prompt, "The grass is green. The sky is blue."), 10u);
}

// Long needle haystacks run past the ~1500 two-word keys and switch to three-word keys; all must stay unique.
TEST(Ruler, LongNeedleHaystackKeepsKeysUnique) {
  RulerSample s = make_ruler_sample(RulerTask::niah_multikey_2, 131072, 3, FillerText());
  EXPECT_EQ(static_cast<int64_t>(s.tokens().size()), 131072);
  EXPECT_GT(count_of(s.prompt, "One of the special magic numbers for "), 1500u);
  std::set<std::string> keys;
  const std::string prefix = "One of the special magic numbers for ";
  size_t n = 0;
  for (size_t at = s.prompt.find(prefix); at != std::string::npos; at = s.prompt.find(prefix, at + 1), ++n) {
    size_t from = at + prefix.size();
    keys.insert(s.prompt.substr(from, s.prompt.find(" is: ", from) - from));
  }
  EXPECT_EQ(keys.size(), n);
  EXPECT_EQ(solve(RulerTask::niah_multikey_2, s.prompt), s.expected);
}

TEST(Ruler, ScorerOnHandMadeAnswers) {
  const std::vector<std::string> expected{"1234567", "7654321", "ABCDE", "fghij"};
  EXPECT_DOUBLE_EQ(ruler_score(expected, "7654321, ABCDE, fghij and 1234567."), 1.0);
  EXPECT_DOUBLE_EQ(ruler_score(expected, "the numbers are 1234567 and ABCDE"), 0.5);
  EXPECT_DOUBLE_EQ(ruler_score(expected, "no idea"), 0.0);
  EXPECT_DOUBLE_EQ(ruler_score(expected, ""), 0.0);
  EXPECT_DOUBLE_EQ(ruler_score({"42"}, "x4242"), 1.0);  // containment, as RULER scores
  EXPECT_DOUBLE_EQ(ruler_accuracy({1.0, 0.5, 0.0, 0.5}), 50.0);
  EXPECT_DOUBLE_EQ(ruler_accuracy({}), 0.0);
}

TEST(Ruler, ParsesTaskNames) {
  EXPECT_EQ(parse_ruler_task("vt"), RulerTask::vt);
  EXPECT_EQ(parse_ruler_task_list("cwe,fwe"), (std::vector<RulerTask>{RulerTask::cwe, RulerTask::fwe}));
  EXPECT_EQ(parse_ruler_task_list("all").size(), ruler_tasks().size());
  try {
    parse_ruler_task("niah_single_9");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("niah_single_9"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("niah_multiquery"), std::string::npos);
  }
  EXPECT_THROW(make_ruler_sample(RulerTask::niah_multiquery, 100, 1, FillerText()), Error);
  EXPECT_THROW(make_ruler_sample(RulerTask::cwe, 150, 1, FillerText()), Error);
}

TEST(Ruler, SampleSeedsDiffer) {
  std::set<uint64_t> seeds;
  for (RulerTask t : {RulerTask::vt, RulerTask::cwe})
    for (int64_t l : {1024, 2048})
      for (int64_t i = 0; i < 3; ++i) seeds.insert(ruler_sample_seed(5, t, l, i));
  EXPECT_EQ(seeds.size(), 12u);
}

TEST(Ruler, MarkdownTable) {
  std::string md = ruler_markdown_table({RulerTask::vt, RulerTask::cwe}, {1024, 4096}, {{100, 50}, {0, 25}});
  EXPECT_EQ(md,
            "| task | 1024 | 4096 |\n|---|---:|---:|\n| vt | 100.0 | 50.0 |\n| cwe | 0.0 | 25.0 |\n"
            "| **average** | 50.0 | 37.5 |\n");
}

}  // namespace

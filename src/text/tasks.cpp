#include "text/tasks.h"

#include "text/tokenizer.h"

#include <hsa/error.h>

#include <algorithm>

namespace hsa {
namespace {

// Keys for multikey_niah: distinct from one another and never produced by the built-in filler's templates
// in the "for <word> is" position.
constexpr std::string_view kKeyWords[] = {
    "amber",   "falcon",  "lantern", "meadow",  "pepper",  "quartz",  "saffron", "tundra",  "velvet",  "walnut",
    "cobalt",  "dolphin", "emerald", "glacier", "harvest", "ivory",   "jasmine", "kettle",  "lagoon",  "marble",
    "nectar",  "orchid",  "pebble",  "quill",   "raven",   "sapphire", "thistle", "umbrella", "violet", "willow",
    "yarrow",  "zephyr",  "anchor",  "breeze",  "cactus",  "dune",    "ember",   "fern",    "granite", "hazel",
};

std::string random_digits(Rng& rng, int count) {
  std::string s;
  s.push_back(static_cast<char>('1' + rng.below(9)));  // no leading zero: reads as a number
  for (int i = 1; i < count; ++i) s.push_back(static_cast<char>('0' + rng.below(10)));
  return s;
}

std::string random_var_name(Rng& rng) {
  std::string s;
  for (int i = 0; i < 3; ++i) s.push_back(static_cast<char>('A' + rng.below(26)));
  return s;
}

// Moves pos back to the start of a sentence or line (after ". " or '\n') within a short distance, so
// needles do not split words; keeps pos when no boundary is close.
size_t snap_to_boundary(const std::string& text, size_t pos) {
  constexpr size_t kMaxBack = 400;
  for (size_t p = pos, steps = 0; steps <= kMaxBack; --p, ++steps) {
    if (p == 0) return 0;
    if (text[p - 1] == '\n') return p;
    if (p >= 2 && text[p - 1] == ' ' && text[p - 2] == '.') return p;
  }
  return pos;
}

size_t count_occurrences(const std::string& haystack, const std::string& needle) {
  size_t count = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++count;
  return count;
}

struct Layout {
  std::vector<std::string> needles;  // in context order
  std::string question;
  std::string answer;
};

int64_t fixed_tokens(const Layout& layout) {
  int64_t n = 1 + static_cast<int64_t>(layout.question.size() + layout.answer.size());  // 1 = bos
  for (const std::string& needle : layout.needles) n += static_cast<int64_t>(needle.size());
  return n;
}

// Draws the needles, question and answer. `budget` is length_tokens: optional needles are dropped until
// the fixed text fits (min_needles always stay; the caller reports the error if even they do not fit).
Layout make_layout(TaskKind kind, int64_t budget, Rng& rng) {
  Layout layout;
  switch (kind) {
    case TaskKind::passkey: {
      layout.answer = random_digits(rng, 5);
      layout.needles.push_back("The pass key is " + layout.answer + ". Remember it. ");
      layout.question = "\nWhat is the pass key? The pass key is ";
      break;
    }
    case TaskKind::multikey_niah: {
      constexpr size_t kNumKeyWords = std::size(kKeyWords);
      const size_t wanted = 3 + rng.below(4);  // 3..6
      std::vector<std::string_view> words(std::begin(kKeyWords), std::end(kKeyWords));
      for (size_t i = 0; i < wanted; ++i) std::swap(words[i], words[i + rng.below(kNumKeyWords - i)]);
      std::vector<std::string> digits;
      for (size_t i = 0; i < wanted; ++i) digits.push_back(random_digits(rng, 7));
      const size_t asked = rng.below(wanted);
      // Keep the asked needle; drop others (from the end) while the text is too long.
      std::vector<size_t> kept;
      for (size_t i = 0; i < wanted; ++i) kept.push_back(i);
      auto build = [&] {
        layout.needles.clear();
        for (size_t i : kept)
          layout.needles.push_back("The special magic number for " + std::string(words[i]) + " is " + digits[i] + ". ");
        std::string w(words[asked]);
        layout.question = "\nWhat is the special magic number for " + w + "? The special magic number for " + w + " is ";
        layout.answer = digits[asked];
      };
      build();
      while (kept.size() > 3 && fixed_tokens(layout) > budget) {
        auto drop = std::find_if(kept.rbegin(), kept.rend(), [&](size_t i) { return i != asked; });
        kept.erase(std::next(drop).base());
        build();
      }
      break;
    }
    case TaskKind::variable_tracking: {
      layout.answer = random_digits(rng, 5);
      const size_t wanted = 2 + rng.below(3);  // 2..4 chained assignments
      std::vector<std::string> names;
      while (names.size() < wanted + 1) {
        std::string name = random_var_name(rng);
        if (name != "VAR" && std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
      }
      size_t hops = wanted;
      auto build = [&] {
        layout.needles.clear();
        layout.needles.push_back("VAR " + names[0] + " = " + layout.answer + ". ");
        for (size_t i = 1; i <= hops; ++i) layout.needles.push_back("VAR " + names[i] + " = VAR " + names[i - 1] + ". ");
        layout.question = "\nWhat is the value of VAR " + names[hops] + "? It is ";
      };
      build();
      while (hops > 2 && fixed_tokens(layout) > budget) {
        --hops;
        build();
      }
      break;
    }
  }
  return layout;
}

}  // namespace

std::string insert_needles(const std::string& haystack, const std::vector<std::string>& needles, Rng& rng) {
  std::vector<size_t> depths;
  for (size_t i = 0; i < needles.size(); ++i)
    depths.push_back(snap_to_boundary(haystack, rng.below(static_cast<uint64_t>(haystack.size()) + 1)));
  std::sort(depths.begin(), depths.end());
  size_t total = haystack.size();
  for (const std::string& needle : needles) total += needle.size();
  std::string context;
  context.reserve(total);
  size_t from = 0;
  for (size_t i = 0; i < needles.size(); ++i) {
    context.append(haystack, from, depths[i] - from);
    context += needles[i];
    from = depths[i];
  }
  context.append(haystack, from, std::string::npos);
  return context;
}

TaskKind parse_task_kind(std::string_view name) {
  for (TaskKind kind : all_task_kinds())
    if (name == task_kind_name(kind)) return kind;
  fail("unknown task '{}': valid tasks are passkey, multikey_niah, variable_tracking", name);
}

std::string task_kind_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::passkey: return "passkey";
    case TaskKind::multikey_niah: return "multikey_niah";
    case TaskKind::variable_tracking: return "variable_tracking";
  }
  fail("task_kind_name: invalid TaskKind {}", static_cast<int>(kind));
}

std::vector<TaskKind> all_task_kinds() {
  return {TaskKind::passkey, TaskKind::multikey_niah, TaskKind::variable_tracking};
}

TaskSample make_task_sample(TaskKind kind, int64_t length_tokens, uint64_t seed, const FillerText& filler) {
  Rng rng(seed);
  Layout layout = make_layout(kind, length_tokens, rng);
  const int64_t fixed = fixed_tokens(layout);
  HSA_CHECK(length_tokens >= fixed,
            "make_task_sample: task {} needs at least {} tokens (bos + needles + question + answer) for seed {}, "
            "got length_tokens = {}",
            task_kind_name(kind), fixed, seed, length_tokens);

  // Filler fills whatever the fixed text leaves; needles go in at sorted random depths, moved back to a
  // sentence boundary, so variable-tracking assignments stay in chain order.
  const int64_t filler_bytes = length_tokens - fixed;
  std::string haystack = filler.take(filler_bytes, rng);
  std::string context = insert_needles(haystack, layout.needles, rng);
  // A user corpus could in principle contain a needle verbatim; the task would then be ambiguous.
  for (const std::string& needle : layout.needles)
    HSA_CHECK(count_occurrences(context, needle) == 1,
              "make_task_sample: needle '{}' occurs more than once (the filler corpus contains it)", needle);

  const std::string prompt = context + layout.question;
  ByteTokenizer tokenizer;
  TaskSample sample;
  sample.tokens = tokenizer.encode(prompt + layout.answer, /*add_bos=*/true);
  sample.prompt_length = 1 + static_cast<int64_t>(prompt.size());
  sample.answer = layout.answer;
  sample.answer_mask.assign(sample.tokens.size(), 0);
  std::fill(sample.answer_mask.begin() + sample.prompt_length, sample.answer_mask.end(), uint8_t{1});
  HSA_CHECK(static_cast<int64_t>(sample.tokens.size()) == length_tokens,
            "make_task_sample: internal error: built {} tokens, expected {}", sample.tokens.size(), length_tokens);
  return sample;
}

}  // namespace hsa

#include "text/tasks.h"

#include "text/random_text.h"
#include "text/token_fit.h"
#include "text/tokenizer.h"

#include <hsa/error.h>

#include <algorithm>
#include <set>

namespace hsa {
namespace {

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
  std::string header;                // text before the haystack (pooled tasks, sometimes)
  std::string repeated_filler;       // when set, the haystack repeats it instead of taking filler text
  std::vector<std::string> needles;  // in context order
  std::string question;
  std::string answer;
  std::vector<std::string> phrasing;  // pooled tasks: "what:entry" of every pool entry drawn
};

// Tokens of everything but the filler: bos + needles + question + answer, each tokenised on its own (the
// filler search in make_task_sample measures the real, joint tokenisation).
int64_t fixed_tokens(const Layout& layout, const Tokenizer& tokenizer) {
  auto count = [&](const std::string& text) { return static_cast<int64_t>(tokenizer.encode(text).size()); };
  int64_t n = 1 + count(layout.question) + count(layout.answer);
  if (!layout.header.empty()) n += count(layout.header);
  for (const std::string& needle : layout.needles) n += count(needle);
  return n;
}

// Draws the needles, question and answer. `budget` is length_tokens: optional needles are dropped until
// the fixed text fits (min_needles always stay; the caller reports the error if even they do not fit).
Layout make_layout(TaskKind kind, int64_t budget, Rng& rng, const Tokenizer& tokenizer) {
  Layout layout;
  switch (kind) {
    case TaskKind::passkey: {
      layout.answer = random_digits(rng, 5);
      layout.needles.push_back("The pass key is " + layout.answer + ". Remember it. ");
      layout.question = "\nWhat is the pass key? The pass key is ";
      break;
    }
    case TaskKind::multikey_niah: {
      const std::span<const std::string_view> key_words = legacy_key_words();
      const size_t wanted = 3 + rng.below(4);  // 3..6
      std::vector<std::string_view> words(key_words.begin(), key_words.end());
      for (size_t i = 0; i < wanted; ++i) std::swap(words[i], words[i + rng.below(key_words.size() - i)]);
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
      while (kept.size() > 3 && fixed_tokens(layout, tokenizer) > budget) {
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
      while (hops > 2 && fixed_tokens(layout, tokenizer) > budget) {
        --hops;
        build();
      }
      break;
    }
    default:
      fail("task {} has no legacy (byte-level) phrasing: use the train or eval phrasings", task_kind_name(kind));
  }
  return layout;
}

// Draws a pooled sample's pieces and records each pool entry it uses.
struct PoolDraw {
  const PhrasingPool& pool;
  Rng& rng;
  Layout& layout;
  KeyKind key_kind;
  ValueKind value_kind;
  std::set<std::string> used;  // keys and values already drawn: all distinct

  PoolDraw(const PhrasingPool& p, Rng& r, Layout& l)
      : pool(p),
        rng(r),
        layout(l),
        key_kind(p.key_kinds[r.below(p.key_kinds.size())]),
        value_kind(p.value_kinds[r.below(p.value_kinds.size())]) {
    layout.phrasing.push_back("key:" + key_kind_name(key_kind));
    layout.phrasing.push_back("value:" + value_kind_name(value_kind));
  }
  std::string_view take(const std::vector<std::string_view>& options, std::string_view what) {
    std::string_view t = pick(options, rng);
    layout.phrasing.push_back(std::string(what) + ":" + std::string(t));
    return t;
  }
  template <class F> std::string distinct(F make) {
    for (int tries = 0; tries < 10000; ++tries) {
      std::string s = make();
      if (used.insert(s).second) return s;
    }
    fail("tasks: ran out of distinct keys or values");
  }
  // A relation of `options`; an open one ("{word} code") takes a fresh pseudo-word (drawn only then).
  std::string relation(const std::vector<std::string_view>& options) {
    const std::string_view t = take(options, "relation");
    if (t.find("{word}") == std::string_view::npos) return std::string(t);
    return fill_template(t, {{"word", random_pseudo_word(rng)}});
  }
  std::string key() { return distinct([&] { return random_key(key_kind, rng); }); }
  std::string value() { return distinct([&] { return random_value(value_kind, rng); }); }
  std::string name() { return distinct([&] { return random_variable_name(pool.upper_case_names, rng); }); }
};

template <class T> void shuffle_in_place(std::vector<T>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

std::string join(const std::vector<std::string>& parts, std::string_view sep, std::string_view last_sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += i + 1 == parts.size() ? last_sep : sep;
    out += parts[i];
  }
  return out;
}

// A pooled sample: the same task shapes as the legacy ones (and a few more), every sentence, question, key and
// value drawn from `pool`. Optional parts (extra needles, hops, list entries) are dropped while the fixed text
// is longer than `budget` tokens.
Layout make_pooled_layout(TaskKind kind, int64_t budget, Rng& rng, const Tokenizer& tokenizer,
                          const PhrasingPool& pool) {
  Layout layout;
  PoolDraw d(pool, rng, layout);
  // The framing (text/task_phrasings.h) is drawn first, so a budget that drops optional facts keeps it.
  const bool use_header = !pool.headers.empty() && rng.below(3) == 0;
  const std::string_view header = use_header ? d.take(pool.headers, "header") : std::string_view();
  if (!pool.repeated_fillers.empty() && rng.below(5) == 0)
    layout.repeated_filler = std::string(d.take(pool.repeated_fillers, "haystack"));
  // The header names the task's relation ("a few door codes"); tasks without one (chains, lists) go without.
  auto frame = [&](const std::string& rel) {
    if (use_header) layout.header = fill_template(header, {{"rel", rel}});
  };
  auto too_long = [&] { return fixed_tokens(layout, tokenizer) > budget; };
  switch (kind) {
    case TaskKind::passkey: {
      const std::string rel = d.relation(pool.keyless_relations);
      frame(rel);
      const std::string_view needle = d.take(pool.keyless_needles, "needle");
      const std::string_view question = d.take(pool.keyless_questions, "question");
      layout.answer = d.value();
      layout.needles = {fill_template(needle, {{"rel", rel}, {"value", layout.answer}})};
      layout.question = fill_template(question, {{"rel", rel}});
      break;
    }
    case TaskKind::multikey_niah:
    case TaskKind::multi_value:
    case TaskKind::multi_query: {
      const std::string rel = d.relation(pool.keyed_relations);
      frame(rel);
      const std::string_view needle = d.take(pool.keyed_needles, "needle");
      const std::string_view question = d.take(kind == TaskKind::multikey_niah ? pool.keyed_questions
                                               : kind == TaskKind::multi_value ? pool.plural_questions
                                                                               : pool.multi_questions,
                                               "question");
      // Facts (key, value); `asked` keys are the question's, the others distractors.
      const size_t asked_count = kind == TaskKind::multi_query ? 2 + rng.below(2) : 1;
      const size_t values_per_key = kind == TaskKind::multi_value ? 2 + rng.below(3) : 1;
      const size_t distractors = kind == TaskKind::multikey_niah ? 2 + rng.below(4) : rng.below(3);
      std::vector<std::string> asked;
      std::vector<std::pair<std::string, std::string>> facts;
      for (size_t k = 0; k < asked_count + distractors; ++k) {
        const std::string key = d.key();
        if (k < asked_count) asked.push_back(key);
        for (size_t v = 0; v < (k < asked_count ? values_per_key : 1); ++v) facts.emplace_back(key, d.value());
      }
      shuffle_in_place(facts, rng);
      auto build = [&] {
        layout.needles.clear();
        for (const auto& [key, value] : facts)
          layout.needles.push_back(fill_template(needle, {{"rel", rel}, {"key", key}, {"value", value}}));
        std::vector<std::string> answers;  // multi_value: context order; multi_query: asked order
        if (kind == TaskKind::multi_query) {
          for (const std::string& key : asked)
            for (const auto& [k, v] : facts)
              if (k == key) answers.push_back(v);
        } else {
          for (const auto& [k, v] : facts)
            if (k == asked[0]) answers.push_back(v);
        }
        layout.answer = join(answers, ", ", ", ");
        layout.question = fill_template(question, {{"rel", rel}, {"key", asked[0]}, {"keys", join(asked, ", ", " and ")}});
      };
      build();
      auto is_distractor = [&](const std::pair<std::string, std::string>& f) {
        return std::find(asked.begin(), asked.end(), f.first) == asked.end();
      };
      while (too_long()) {
        auto drop = std::find_if(facts.rbegin(), facts.rend(), is_distractor);
        if (drop == facts.rend()) break;
        facts.erase(std::next(drop).base());
        build();
      }
      break;
    }
    case TaskKind::variable_tracking: {
      const std::string_view head = d.take(pool.value_assignments, "assignment");
      const std::string_view link = d.take(pool.name_assignments, "assignment");
      const std::string_view question = d.take(pool.chain_questions, "question");
      layout.answer = d.value();
      std::vector<std::string> names;
      const size_t wanted = 2 + rng.below(3);  // 2..4 links
      for (size_t i = 0; i <= wanted; ++i) names.push_back(d.name());
      size_t hops = wanted;
      auto build = [&] {
        layout.needles = {fill_template(head, {{"name", names[0]}, {"rhs", layout.answer}})};
        for (size_t i = 1; i <= hops; ++i)
          layout.needles.push_back(fill_template(link, {{"name", names[i]}, {"rhs", names[i - 1]}}));
        layout.question = fill_template(question, {{"name", names[hops]}});
      };
      build();
      while (hops > 1 && too_long()) {
        --hops;
        build();
      }
      break;
    }
    case TaskKind::kv_lookup: {
      const std::string_view header = d.take(pool.list_headers, "list_header");
      const std::string_view entry = d.take(pool.list_entries, "list_entry");
      const std::string_view question = d.take(pool.list_questions, "question");
      std::vector<std::pair<std::string, std::string>> entries;
      const size_t wanted = 4 + rng.below(9);  // 4..12 entries
      for (size_t i = 0; i < wanted; ++i) {
        std::string key = d.key();
        entries.emplace_back(std::move(key), d.value());
      }
      const size_t asked = rng.below(wanted);
      const std::string asked_key = entries[asked].first;
      layout.answer = entries[asked].second;
      layout.question = fill_template(question, {{"key", asked_key}});
      auto build = [&] {
        std::string list = "\n" + std::string(header);
        for (const auto& [key, value] : entries) list += fill_template(entry, {{"key", key}, {"value", value}});
        layout.needles = {list};
      };
      build();
      while (entries.size() > 2 && too_long()) {
        auto drop = std::find_if(entries.rbegin(), entries.rend(), [&](const auto& e) { return e.first != asked_key; });
        entries.erase(std::next(drop).base());
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
  std::string valid;
  for (TaskKind kind : all_task_kinds()) valid += (valid.empty() ? "" : ", ") + task_kind_name(kind);
  fail("unknown task '{}': valid tasks are {}", name, valid);
}

std::string task_kind_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::passkey: return "passkey";
    case TaskKind::multikey_niah: return "multikey_niah";
    case TaskKind::variable_tracking: return "variable_tracking";
    case TaskKind::kv_lookup: return "kv_lookup";
    case TaskKind::multi_value: return "multi_value";
    case TaskKind::multi_query: return "multi_query";
  }
  fail("task_kind_name: invalid TaskKind {}", static_cast<int>(kind));
}

std::vector<TaskKind> legacy_task_kinds() {
  return {TaskKind::passkey, TaskKind::multikey_niah, TaskKind::variable_tracking};
}

std::vector<TaskKind> all_task_kinds() {
  return {TaskKind::passkey,   TaskKind::multikey_niah, TaskKind::variable_tracking,
          TaskKind::kv_lookup, TaskKind::multi_value,   TaskKind::multi_query};
}

TaskSample make_task_sample(TaskKind kind, int64_t length_tokens, uint64_t seed, const FillerText& filler) {
  return make_task_sample(kind, length_tokens, seed, filler, ByteTokenizer(), Phrasings::legacy);
}

TaskSample make_task_sample(TaskKind kind, int64_t length_tokens, uint64_t seed, const FillerText& filler,
                            const Tokenizer& tokenizer, Phrasings phrasings) {
  Rng rng(seed);
  Layout layout;
  int64_t fixed = 0;
  if (phrasings == Phrasings::legacy) {
    layout = make_layout(kind, length_tokens, rng, tokenizer);
    fixed = fixed_tokens(layout, tokenizer);
  } else {
    // The pooled phrasings run from a few words to a few dozen (text/task_phrasings.cpp composes them), so a short
    // row takes the first of a few draws whose fixed text fits rather than failing; a row with room keeps its
    // first draw, so its sample does not depend on how short other rows are.
    constexpr int kDraws = 16;
    int64_t smallest = 0;
    for (int draw = 0; draw < kDraws; ++draw) {
      Layout candidate = make_pooled_layout(kind, length_tokens, rng, tokenizer, phrasing_pool(phrasings));
      const int64_t need = fixed_tokens(candidate, tokenizer);
      if (draw == 0 || need < smallest) smallest = need, layout = std::move(candidate);
      if (need <= length_tokens) break;
    }
    fixed = smallest;
  }
  HSA_CHECK(length_tokens >= fixed,
            "make_task_sample: task {} needs at least {} tokens (bos + needles + question + answer) for seed {}, "
            "got length_tokens = {}",
            task_kind_name(kind), fixed, seed, length_tokens);

  // Filler fills whatever the fixed text leaves; needles go in at sorted random depths, moved back to a
  // sentence boundary, so variable-tracking assignments stay in chain order. Prompt and answer are tokenised
  // apart, as generation sees them: the prompt's tokens, then the answer's.
  std::string question = layout.question, answer_text = layout.answer;
  move_trailing_space_to_answer(question, answer_text, tokenizer);
  const std::vector<int32_t> answer_tokens = tokenizer.encode(answer_text);
  auto build_context = [&](int64_t filler_bytes) {
    Rng r = rng;  // every trial budget draws the same random numbers
    std::string haystack;
    if (layout.repeated_filler.empty()) {
      haystack = filler.take(filler_bytes, r);
    } else {
      while (static_cast<int64_t>(haystack.size()) < filler_bytes) haystack += layout.repeated_filler;
      haystack.resize(static_cast<size_t>(std::max<int64_t>(filler_bytes, 0)));
    }
    return layout.header + insert_needles(haystack, layout.needles, r);
  };
  auto count = [&](int64_t filler_bytes) {
    const std::string prompt = build_context(filler_bytes) + question;
    return static_cast<int64_t>(tokenizer.encode(prompt, /*add_bos=*/true).size() + answer_tokens.size());
  };
  const TokenFit fit = fit_to_tokens(length_tokens, 0, length_tokens - fixed, 0, count);
  HSA_CHECK(fit.budget >= 0, "make_task_sample: task {} needs at least {} tokens for seed {}, got length_tokens = {}",
            task_kind_name(kind), fit.tokens, seed, length_tokens);
  const std::string context = build_context(fit.budget);
  // A user corpus could in principle contain a needle verbatim; the task would then be ambiguous.
  for (const std::string& needle : layout.needles)
    HSA_CHECK(count_occurrences(context, needle) == 1,
              "make_task_sample: needle '{}' occurs more than once (the filler corpus contains it)", needle);

  TaskSample sample;
  sample.tokens = tokenizer.encode(context + question, /*add_bos=*/true);
  sample.prompt_length = static_cast<int64_t>(sample.tokens.size());
  sample.tokens.insert(sample.tokens.end(), answer_tokens.begin(), answer_tokens.end());
  sample.answer = layout.answer;
  sample.answer_text = answer_text;
  sample.phrasing = std::move(layout.phrasing);
  sample.answer_mask.assign(sample.tokens.size(), 0);
  std::fill(sample.answer_mask.begin() + sample.prompt_length, sample.answer_mask.end(), uint8_t{1});
  // A subword tokenizer may land a few tokens short of the length (one more filler byte can add two tokens):
  // end-of-text tokens after the answer make up the rest (they teach the model to stop). Bytes never need them.
  sample.tokens.resize(static_cast<size_t>(length_tokens), tokenizer.eos_id());
  sample.answer_mask.resize(static_cast<size_t>(length_tokens), 0);
  return sample;
}

}  // namespace hsa

// RULER-style long-context evaluation tasks, generated without external data, for any tokenizer (lengths in its
// tokens, plus a leading bos; the byte-level tokenizer has 1 token = 1 byte). Their phrasings are held out: no
// training task uses them (text/task_phrasings.h). Every sample is deterministic in (task, length_tokens, seed,
// filler) and its prompt tokenises to between length_tokens - 64 and length_tokens tokens (bos included; the NIAH
// and vt prompts hit length_tokens exactly; the held-out tasks leave room for their answer, up to ~100 tokens
// for several uuids). A sample carries the list of strings the answer must contain.
//
//   niah_single_1    noise haystack ("The grass is green. The sky is blue. ..."), one word key -> 7-digit number
//   niah_single_2    essay-like haystack (FillerText), one word key -> 7-digit number
//   niah_single_3    essay-like haystack, one word key -> uuid
//   niah_multikey_1  essay-like haystack, 3-6 keyed numbers, one asked (make_task_sample's multikey_niah)
//   niah_multikey_2  haystack made of distractor needles (unique word keys -> numbers), one asked
//   niah_multikey_3  haystack made of distractor needles with uuid keys -> uuid values, one asked
//   niah_multivalue  essay-like haystack, one key with 4 numbers, all 4 expected
//   niah_multiquery  essay-like haystack, 4 keys asked at once, all 4 numbers expected
//   vt               noise haystack with a chain "VAR A = 12345." "VAR B = VAR A." ...; all 5 names expected
//   cwe              numbered word list, 10 words repeated more than the rest; the 10 common words expected
//   fwe              coded-word stream with Zipf (alpha 2) frequencies; the 3 most frequent words expected
//
// Scoring follows RULER: a sample scores the fraction of expected strings contained in the answer text; a
// task's accuracy is the mean score over samples x 100.
#pragma once
#include "text/filler.h"
#include "text/tokenizer.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hsa::eval {

enum class RulerTask {
  niah_single_1,
  niah_single_2,
  niah_single_3,
  niah_multikey_1,
  niah_multikey_2,
  niah_multikey_3,
  niah_multivalue,
  niah_multiquery,
  vt,
  cwe,
  fwe,
  // The training tasks (text/tasks.h) in the held-out eval phrasing pool: templates, questions, key and value
  // kinds no training row ever uses. Not part of "all" (the RULER average stays RULER's); "heldout" selects them.
  heldout_passkey,
  heldout_multikey,
  heldout_variable_tracking,
  heldout_kv_lookup,
  heldout_multi_value,
  heldout_multi_query,
};

struct RulerTaskInfo {
  RulerTask task;
  std::string_view name;
  std::string_view description;  // one line, for --help
};

const std::vector<RulerTaskInfo>& ruler_tasks();    // the 11 RULER tasks, in the order above ("all")
const std::vector<RulerTaskInfo>& heldout_tasks();  // the held-out-phrasing training tasks ("heldout")
std::string ruler_task_name(RulerTask task);
RulerTask parse_ruler_task(std::string_view name);             // throws listing the valid names
std::vector<RulerTask> parse_ruler_task_list(std::string_view csv);  // "a,b"; "all" = RULER's; "heldout"

struct RulerSample {
  std::string prompt;                  // text after bos; ends where the model's answer starts
  std::vector<std::string> expected;   // strings the answer must contain
  std::vector<int32_t> tokens() const;  // bos + prompt bytes
  std::vector<int32_t> tokens(const Tokenizer& tokenizer) const;  // bos + the prompt's tokens
};

// Smallest-length errors name the task and the minimum; length_tokens must be > 0.
RulerSample make_ruler_sample(RulerTask task, int64_t length_tokens, uint64_t seed, const FillerText& filler);
// The same tasks sized in `tokenizer`'s tokens (the text budget grows until the prompt fills the length);
// with ByteTokenizer the result equals the overload above.
RulerSample make_ruler_sample(RulerTask task, int64_t length_tokens, uint64_t seed, const FillerText& filler,
                              const Tokenizer& tokenizer);

// Fraction of `expected` contained in `answer` (1 when expected is empty).
double ruler_score(const std::vector<std::string>& expected, std::string_view answer);
// mean(scores) x 100 (0 when empty).
double ruler_accuracy(const std::vector<double>& scores);

// Seed of sample `index` of `task` at `length`, derived from the run seed (distinct per triple).
uint64_t ruler_sample_seed(uint64_t seed, RulerTask task, int64_t length, int64_t index);

// Markdown table: one row per task (plus an average row), one column per length, accuracy with 1 decimal.
// accuracy[t][l] belongs to tasks[t] at lengths[l].
std::string ruler_markdown_table(const std::vector<RulerTask>& tasks, const std::vector<int64_t>& lengths,
                                 const std::vector<std::vector<double>>& accuracy);

}  // namespace hsa::eval

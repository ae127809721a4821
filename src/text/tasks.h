// Synthetic long-context retrieval tasks (RULER-style) for any tokenizer: the text is built first (filler
// haystack, needles at sentence boundaries, question), then tokenised; lengths are in the tokenizer's tokens,
// with a leading bos. With the byte-level tokenizer 1 byte = 1 token.
// Every sample is deterministic in (kind, length_tokens, seed, filler) and has exactly length_tokens tokens.
//
//   passkey            "The pass key is 48213. Remember it. " hidden at a random depth;
//                      asks "\nWhat is the pass key? The pass key is " -> "48213"
//   multikey_niah      3-6 needles "The special magic number for <word> is <7 digits>. " with distinct words;
//                      asks for one of them -> its 7 digits
//   variable_tracking  "VAR QXJ = 52811. " then 2-4 chained "VAR ABC = VAR QXJ. " in order through the filler;
//                      asks "\nWhat is the value of VAR <last>? It is " -> "52811"
//
// multikey_niah and variable_tracking use fewer needles (down to 3 and 2) when the length leaves no room
// for more; a length too small even for those is an error.
//
// Those are the `legacy` phrasings (the byte-level models' training data). The `train` and `eval` phrasing
// pools (text/task_phrasings.h) build the same task shapes from disjoint pools of sentences, questions, key
// and value kinds, and add three more (pooled phrasings only):
//   kv_lookup          a list of 4-12 "key: value" lines (one needle); asks for one key's value
//   multi_value        one key given 2-4 values in separate needles (plus distractor keys); asks for all of
//                      them, answered "v1, v2, v3" in context order
//   multi_query        2-3 asked keys among distractors; answered "v1, v2" in the order asked
#pragma once
#include "text/filler.h"
#include "text/task_phrasings.h"
#include "text/tokenizer.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hsa {

struct TaskSample {
  std::vector<int32_t> tokens;       // bos + context + question + answer; size = length_tokens
  std::vector<uint8_t> answer_mask;  // 1 on the tokens of the answer, else 0; size = length_tokens
  std::string answer;                // the answer text
  std::string answer_text;           // the text of the answer tokens: `answer`, after a space for subword
                                     // tokenizers (move_trailing_space_to_answer in text/tokenizer.h)
  int64_t prompt_length = 0;         // tokens before the answer (generation starts here)
  std::vector<std::string> phrasing;  // pooled phrasings: "what:entry" of every pool entry used (tests, logs)
};

enum class TaskKind { passkey, multikey_niah, variable_tracking, kv_lookup, multi_value, multi_query };

TaskKind parse_task_kind(std::string_view name);  // throws listing the valid names
std::string task_kind_name(TaskKind kind);
std::vector<TaskKind> all_task_kinds();     // every kind
std::vector<TaskKind> legacy_task_kinds();  // the kinds that have legacy phrasings (passkey, multikey, vt)

// Inserts `needles`, in this order, at sorted random depths of `haystack`, each depth moved back to a sentence
// or line boundary when one is close (so needles do not split words). Returns haystack + all needles.
std::string insert_needles(const std::string& haystack, const std::vector<std::string>& needles, Rng& rng);

// Byte-level sample (what the shipped byte models were trained on).
TaskSample make_task_sample(TaskKind kind, int64_t length_tokens, uint64_t seed, const FillerText& filler);
// The same text, tokenised by `tokenizer` and sized to length_tokens of its tokens: the filler grows or shrinks
// until bos + prompt + answer fit; a subword tokenizer that lands short pads with eos after the answer (so the
// length is always exact). With ByteTokenizer the result equals the overload above.
TaskSample make_task_sample(TaskKind kind, int64_t length_tokens, uint64_t seed, const FillerText& filler,
                            const Tokenizer& tokenizer, Phrasings phrasings = Phrasings::legacy);

}  // namespace hsa

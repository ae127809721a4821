// Phrasing pools of the synthetic tasks: the sentence templates, question forms, key kinds and value kinds a
// task sample is built from. Two pools never overlap:
//   train  what training samples draw from (`hsa train` rows);
//   eval   held out: never seen in training, so a model that answers them has learned retrieval, not a
//          template. It also reserves the phrasings of the byte-level tasks ("The pass key is", "The special
//          magic number for", "VAR X = ") and of RULER (eval/ruler.h), which no training pool may use.
// The `legacy` phrasings are the original byte-level tasks, kept bit-exact for the shipped models; they are
// part of the eval pool as far as new training is concerned.
//
// Templates use the placeholders {rel} (a relation such as "access code"), {key}, {value}, {name}, {rhs},
// {keys}; a question ends where the answer starts.
#pragma once
#include <hsa/random.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hsa {

enum class Phrasings { legacy, train, eval };

Phrasings parse_phrasings(std::string_view name);  // "legacy", "train", "eval"; throws listing them
std::string phrasings_name(Phrasings phrasings);

// What identifies a needle, and what it hides.
// pseudo_word (train only): a made-up pronounceable word ("vorimak"), so that keys come from an open vocabulary
// and a model learns to match a key's tokens rather than the embeddings of a few dozen key words.
enum class KeyKind { word, person_name, code, legacy_word, word_pair, uuid, pseudo_word, hyphenated };
enum class ValueKind { digits4, digits5, digits6, digits8, word, hex6, digits7, uuid };

std::string key_kind_name(KeyKind kind);
std::string value_kind_name(ValueKind kind);

struct PhrasingPool {
  // Relations may hold "{word}": a fresh pseudo-word per sample ("the vorimak code"), an open vocabulary of them.
  std::vector<std::string_view> keyed_relations;    // "access code": what a keyed needle's value is
  std::vector<std::string_view> keyed_needles;      // {key} {rel} {value}
  std::vector<std::string_view> keyed_questions;    // {key} {rel}
  std::vector<std::string_view> plural_questions;   // {key} {rel}: all values of one key, in context order
  std::vector<std::string_view> multi_questions;    // {keys} {rel}: the values of several keys, in asked order
  std::vector<std::string_view> keyless_relations;  // "door code": passkey-like single secrets
  std::vector<std::string_view> keyless_needles;    // {rel} {value}
  std::vector<std::string_view> keyless_questions;  // {rel}
  std::vector<std::string_view> value_assignments;  // {name} {rhs}: the head of a variable chain (rhs = value)
  std::vector<std::string_view> name_assignments;   // {name} {rhs}: a link of the chain (rhs = earlier name)
  std::vector<std::string_view> chain_questions;    // {name}
  std::vector<std::string_view> list_headers;       // key-value list: its first line
  std::vector<std::string_view> list_entries;       // {key} {value}: one line of the list
  std::vector<std::string_view> list_questions;     // {key}
  // Optional framing, drawn for a share of the samples where not empty (the eval pool has none):
  std::vector<std::string_view> headers;            // {rel}: a line before the text announcing the facts in it
  std::vector<std::string_view> repeated_fillers;   // a few sentences repeated as the whole haystack
  std::vector<KeyKind> key_kinds;
  std::vector<ValueKind> value_kinds;
  bool upper_case_names = false;                    // variable names: "q7f" (train) or "QFZ" (eval)
};

// The pool of `phrasings` (train or eval; legacy has no pool: its tasks are hard-coded in text/tasks.cpp).
const PhrasingPool& phrasing_pool(Phrasings phrasings);

// The legacy multikey_niah task's key words (text/tasks.cpp), also the eval-only KeyKind::legacy_word: distinct
// from one another and never produced by the built-in filler in the "for <word> is" position.
std::span<const std::string_view> legacy_key_words();

// Text that only the eval pool, the legacy tasks and RULER use: a training sample never contains any of it.
const std::vector<std::string_view>& reserved_eval_fragments();

// Draws from a pool.
std::string_view pick(const std::vector<std::string_view>& options, Rng& rng);
std::string random_key(KeyKind kind, Rng& rng);
std::string random_value(ValueKind kind, Rng& rng);
std::string random_variable_name(bool upper_case, Rng& rng);
// A made-up word of 2-3 consonant-vowel syllables (sometimes a final consonant), never a key word of the eval pool.
std::string random_pseudo_word(Rng& rng);

// `tpl` with every {name} replaced by its value; an unknown placeholder is an error naming it.
std::string fill_template(std::string_view tpl, const std::vector<std::pair<std::string_view, std::string>>& values);

}  // namespace hsa

#include "text/task_phrasings.h"

#include "text/random_text.h"

#include <hsa/error.h>

#include <algorithm>
#include <deque>
#include <iterator>

namespace hsa {
namespace {

// Key words of the train pool; none is a legacy or RULER key word (the eval pool's).
constexpr std::string_view kTrainKeyWords[] = {
    "bicycle", "candle",   "teapot",   "compass",  "ladder",   "mitten",   "trumpet", "basket",  "saddle",
    "helmet",  "pillow",   "kayak",    "violin",   "hammock",  "scooter",  "blanket", "goblet",  "lighthouse",
    "notebook", "puzzle",  "rucksack", "spindle",  "tractor",  "whistle",  "carousel", "chimney", "drum",
    "easel",   "fountain", "gazebo",   "hatchet",  "jigsaw",   "kite",     "locket",  "mailbox", "napkin",
    "oar",     "paddle",   "quiver",   "ribbon",   "sled",     "thimble",  "unicycle", "vase",   "wagon",
    "xylophone", "yacht",  "zipper",   "acorn",    "bucket",
};
constexpr std::string_view kTrainNames[] = {
    "Alice", "Bruno",  "Clara",   "Dmitri", "Elena", "Farid",  "Greta",  "Hiro",   "Ines",   "Jonas",
    "Kofi",  "Lena",   "Mateo",   "Nadia",  "Oskar", "Priya",  "Quentin", "Rosa",  "Sven",   "Tamsin",
    "Umar",  "Vera",   "Wendell", "Ximena", "Yusuf", "Zora",   "Anika",  "Bastian", "Celine", "Dario",
};
constexpr std::string_view kValueWords[] = {
    "crimson", "turquoise", "mustard", "lavender", "scarlet", "indigo", "maroon", "teal",  "beige", "charcoal",
    "apricot", "plum",      "mango",   "papaya",   "kiwi",    "lychee", "fig",    "guava", "melon", "cherry",
};
// First halves of hyphenated train keys ("sandy-teapot", "frosty-vorimak"); none is a word of an eval or RULER key.
constexpr std::string_view kTrainAdjectives[] = {
    "quiet", "sandy", "frosty", "golden", "rapid", "humble", "silver", "gentle", "sturdy", "cloudy",
    "narrow", "proud", "rusty", "sleepy", "stormy", "sunny", "tiny", "wooden", "wild", "young",
};
constexpr std::string_view kPairA[] = {"brisk", "dusky", "eager", "jolly", "mellow", "nimble", "rustic", "witty"};
constexpr std::string_view kPairB[] = {"badger", "comet", "ferret", "gecko", "jackal", "koala", "lemur", "otter"};

// The train pool's needles, questions and relations are composed from parts (an opener, a core clause, a closer;
// a question and an answer lead; a modifier and a noun), a few hundred of each, so that a model learns to find
// and copy a value rather than the surface of a handful of sentences: with 5 needle sentences and 3 questions a
// model reached 0.5 nats a token on them while staying at 5 nats on the eval pool's (docs/results.md, "Fourth
// attempt"). Composition keeps every part clear of the reserved fragments (checked by the tests).
std::string_view own(std::string text) {
  static std::deque<std::string> storage;  // the pools are built once and live as long as the program
  return storage.emplace_back(std::move(text));
}

std::string capitalize_first(std::string text) {
  if (!text.empty() && text[0] >= 'a' && text[0] <= 'z') text[0] = static_cast<char>(text[0] - 'a' + 'A');
  return text;
}

// Every opener + core + closer, the sentence's first letter capitalised.
using Parts = std::vector<std::string_view>;

std::vector<std::string_view> compose_sentences(const Parts& openers, const Parts& cores, const Parts& closers) {
  std::vector<std::string_view> out;
  for (std::string_view o : openers)
    for (std::string_view c : cores)
      for (std::string_view e : closers)
        out.push_back(own(capitalize_first(std::string(o) + std::string(c)) + std::string(e)));
  return out;
}

// Every "\n" + question + " " + answer lead + " " (the space that opens the answer, as in every question).
std::vector<std::string_view> compose_questions(const Parts& questions, const Parts& leads) {
  std::vector<std::string_view> out;
  for (std::string_view q : questions)
    for (std::string_view l : leads) out.push_back(own("\n" + std::string(q) + " " + std::string(l) + " "));
  return out;
}

std::vector<std::string_view> compose_words(const Parts& firsts, const Parts& seconds) {
  std::vector<std::string_view> out;
  for (std::string_view a : firsts)
    for (std::string_view b : seconds) out.push_back(own(std::string(a) + " " + std::string(b)));
  return out;
}

const Parts kNeedleOpeners = {
    "", "note that ", "remember: ", "for the record, ", "according to the file, ", "as it happens, ",
    "please remember that ", "it was recorded that ", "in the notes, "};
const Parts kNeedleClosers = {". ", ". Do not lose it. ", ", as noted. "};

PhrasingPool make_train_pool() {
  PhrasingPool p;
  p.keyed_relations = compose_words({"access", "locker", "reference", "ticket", "registration", "booking", "account",
                                     "parcel", "member", "badge", "order", "tracking", "invoice"},
                                    {"code", "number", "id", "token"});
  // About a third of the relations are open: "{word}" is a fresh pseudo-word per sample.
  for (std::string_view r : compose_words({"{word}"}, {"code", "number", "id", "token", "value", "tag", "label", "pin",
                                                       "reference", "figure", "entry", "digits", "record", "mark"}))
    p.keyed_relations.push_back(r);
  for (std::string_view r : compose_words({"{word}"}, {"access code", "account number", "ticket id", "locker code"}))
    p.keyed_relations.push_back(r);
  p.keyed_needles = compose_sentences(
      kNeedleOpeners,
      {"for {key}, the {rel} is {value}", "the {rel} of {key} is {value}", "{key} has the {rel} {value}",
       "{key} was given the {rel} {value}", "the {rel} that belongs to {key} is {value}",
       "{value} is the {rel} of {key}", "{key}'s {rel} is {value}", "the {rel} on file for {key} reads {value}",
       "{key} received {value} as the {rel}"},
      kNeedleClosers);
  // Answer leads also carry a clause between the key and the verb ("The ticket id of Alice in the notes above
  // is"): RULER's single-needle questions do ("... mentioned in the provided text is"), and a model that only saw
  // "of {key} is" continued those as text while answering the shorter multi-key form (docs/results.md, "Fifth
  // attempt").
  const Parts middles = {"in the text above", "as written earlier", "from the notes", "given before",
                         "that appeared earlier", "in this document", "we read about", "listed earlier",
                         "stated above", "from the passage", "recorded here", "in the record"};
  Parts keyed_leads = {"The {rel} of {key} is", "Answer:", "It is", "{key} has the {rel}", "The answer is"};
  Parts keyed_questions = {"Which {rel} does {key} have?", "Question: which {rel} was {key} given?",
                           "Look back at the text.", "What was the {rel} of {key}?",
                           "Can you tell me the {rel} of {key}?", "Which {rel} belongs to {key}?"};
  for (std::string_view m : middles) {
    keyed_leads.push_back(own("The {rel} of {key} " + std::string(m) + " is"));
    keyed_leads.push_back(own("The {rel} for {key} " + std::string(m) + " is"));
  }
  // Questions that repeat the middle clause, answered by a lead that repeats the question (RULER's shape).
  for (std::string_view m : {"in the text above", "from the notes", "in this document", "stated above"})
    keyed_questions.push_back(own("What was the {rel} for {key} " + std::string(m) + "?"));
  p.keyed_questions = compose_questions(keyed_questions, keyed_leads);
  p.plural_questions = {"\nList every {rel} of {key}, in order: ",
                        "\nQuestion: which {rel}s does {key} have? Answer: ",
                        "\nWhich {rel}s were given to {key}? In order, they are ",
                        "\nGo through the text and list the {rel}s of {key}: "};
  p.multi_questions = {"\nGive the {rel} of each of {keys}, in that order: ",
                       "\nQuestion: which {rel}s do {keys} have? Answer, in order: ",
                       "\nWhat were the {rel}s of {keys}? In that order: ",
                       "\nFor each of {keys}, give the {rel}: "};
  p.keyless_relations = {"door code", "vault combination", "wifi password", "secret code", "unlock code", "alarm code",
                         "safe combination", "locker pin", "gate code", "entry code", "{word} code",
                         "{word} password", "{word} pin", "{word} combination", "{word} number", "{word} door code"};
  p.keyless_needles = compose_sentences(
      kNeedleOpeners,
      {"the {rel} is {value}", "here is the {rel}: {value}", "write this down: the {rel} is {value}",
       "{value} is the {rel}", "the {rel} has been set to {value}", "the {rel} reads {value}"},
      kNeedleClosers);
  Parts keyless_leads = {"It was", "Answer:", "The {rel} was", "The answer is"};
  for (std::string_view m : middles) keyless_leads.push_back(own("The {rel} " + std::string(m) + " was"));
  p.keyless_questions = compose_questions(
      {"Which {rel} was mentioned?", "Question: what was the {rel}?", "What was the {rel}?",
       "Do you remember the {rel}?"},
      keyless_leads);
  p.value_assignments = {"let {name} be {rhs}. ", "{name} := {rhs}; ", "set {name} to {rhs}. "};
  p.name_assignments = p.value_assignments;
  p.chain_questions = {"\nWhich value does {name} hold in the end? It holds ",
                       "\nQuestion: after all the assignments, what is {name}? Answer: "};
  p.list_headers = {"Reference table:\n", "Lookup list (key: value):\n", "Records on file:\n"};
  p.list_entries = {"{key}: {value}\n", "{key} -> {value}\n", "* {key} = {value}\n"};
  p.list_questions = {"\nIn the table above, which entry is listed for {key}? ",
                      "\nLook up {key} in the list. It maps to "};
  // Announcing lines and repetitive haystacks: RULER frames its needles with an instruction and hides some in one
  // repeated paragraph; a model that only saw needles in plain prose continued RULER's prompts as text.
  p.headers = {"The text below hides a few {rel}s. Read it with care; questions follow at the end.\n",
               "Some {rel}s are buried in the following notes. Keep track of them, you will be asked.\n",
               "Read the document below. It contains {rel}s that a question at the end asks about.\n",
               "Below is a long text with a few facts in it. Pay attention to every {rel}.\n",
               "A test of memory: the pages below mention {rel}s. Note them as you read.\n"};
  p.repeated_fillers = {"The river runs fast. The hills are quiet. The road is long. Birds fly south. Again and again. ",
                        "Snow falls on the roof. The lamp is lit. The clock ticks. Nothing else happens here. ",
                        "The sea is calm today. Boats rest in the harbour. Gulls circle overhead. Round we go. ",
                        "One, two, three, four. The wheel turns. The wheel stops. The wheel turns once more. "};
  p.key_kinds = {KeyKind::word, KeyKind::person_name, KeyKind::code, KeyKind::pseudo_word, KeyKind::pseudo_word,
                 KeyKind::hyphenated, KeyKind::hyphenated};
  p.value_kinds = {ValueKind::digits4, ValueKind::digits5, ValueKind::digits6, ValueKind::digits8, ValueKind::word,
                   ValueKind::hex6};
  p.upper_case_names = false;
  return p;
}

// Held out. The first entries of several lists are the legacy tasks' and RULER's own phrasings.
PhrasingPool make_eval_pool() {
  PhrasingPool p;
  p.keyed_relations = {"special magic number", "security token", "serial number"};
  p.keyed_needles = {"The {rel} for {key} is {value}. ", "One of the {rel}s for {key} is: {value}. ",
                     "Keep in mind that {key} uses {rel} {value}. "};
  p.keyed_questions = {"\nWhat is the {rel} for {key}? The {rel} for {key} is ",
                       "\nWhat is the {rel} for {key} mentioned in the provided text? The {rel} for {key} mentioned "
                       "in the provided text is ",
                       "\nRecall the {rel} assigned to {key}: "};
  p.plural_questions = {"\nWhat are all the {rel}s for {key} mentioned in the provided text? The {rel}s for {key} "
                        "mentioned in the provided text are ",
                        "\nName each {rel} recorded for {key}: "};
  p.multi_questions = {"\nWhat are all the {rel}s for {keys} mentioned in the provided text? The {rel}s for {keys} "
                       "mentioned in the provided text are ",
                       "\nFor {keys}, recall each {rel} in turn: "};
  p.keyless_relations = {"pass key", "passphrase", "master key"};
  p.keyless_needles = {"The {rel} is {value}. Remember it. ", "Important: {value} is the {rel}. "};
  p.keyless_questions = {"\nWhat is the {rel}? The {rel} is ", "\nRecall the {rel}: "};
  p.value_assignments = {"VAR {name} = {rhs}. ", "{name} <- {rhs}. "};
  p.name_assignments = p.value_assignments;
  p.chain_questions = {"\nWhat is the value of VAR {name}? It is ", "\nTrace {name} back to its value: "};
  p.list_headers = {"Directory:\n", "Catalogue entries:\n"};
  p.list_entries = {"{key} | {value}\n", "({key}, {value})\n"};
  p.list_questions = {"\nFind {key} in the directory. Its entry is ", "\nWhich entry does the catalogue give for {key}? "};
  p.key_kinds = {KeyKind::legacy_word, KeyKind::word_pair, KeyKind::uuid};
  p.value_kinds = {ValueKind::digits7, ValueKind::uuid};
  p.upper_case_names = true;
  return p;
}

}  // namespace

Phrasings parse_phrasings(std::string_view name) {
  for (Phrasings p : {Phrasings::legacy, Phrasings::train, Phrasings::eval})
    if (name == phrasings_name(p)) return p;
  fail("unknown phrasings '{}': valid are legacy, train, eval", name);
}

std::string phrasings_name(Phrasings phrasings) {
  switch (phrasings) {
    case Phrasings::legacy: return "legacy";
    case Phrasings::train: return "train";
    case Phrasings::eval: return "eval";
  }
  fail("phrasings_name: invalid Phrasings {}", static_cast<int>(phrasings));
}

std::string key_kind_name(KeyKind kind) {
  switch (kind) {
    case KeyKind::word: return "word";
    case KeyKind::person_name: return "person_name";
    case KeyKind::code: return "code";
    case KeyKind::legacy_word: return "legacy_word";
    case KeyKind::word_pair: return "word_pair";
    case KeyKind::uuid: return "uuid";
    case KeyKind::pseudo_word: return "pseudo_word";
    case KeyKind::hyphenated: return "hyphenated";
  }
  fail("key_kind_name: invalid KeyKind {}", static_cast<int>(kind));
}

std::string value_kind_name(ValueKind kind) {
  switch (kind) {
    case ValueKind::digits4: return "digits4";
    case ValueKind::digits5: return "digits5";
    case ValueKind::digits6: return "digits6";
    case ValueKind::digits8: return "digits8";
    case ValueKind::word: return "word";
    case ValueKind::hex6: return "hex6";
    case ValueKind::digits7: return "digits7";
    case ValueKind::uuid: return "uuid";
  }
  fail("value_kind_name: invalid ValueKind {}", static_cast<int>(kind));
}

const PhrasingPool& phrasing_pool(Phrasings phrasings) {
  static const PhrasingPool train = make_train_pool();
  static const PhrasingPool eval = make_eval_pool();
  switch (phrasings) {
    case Phrasings::train: return train;
    case Phrasings::eval: return eval;
    case Phrasings::legacy: break;
  }
  fail("phrasing_pool: the legacy phrasings have no pool (their tasks are fixed)");
}

const std::vector<std::string_view>& reserved_eval_fragments() {
  static const std::vector<std::string_view> fragments = {
      "special magic", "pass key", "VAR ", "Remember it.", "mentioned in the provided text", "\nWhat is the ",
      "\nWhat are all", "Memorize", "Question: Find all variables", "most common words", "coded text",
      "security token", "serial number", "passphrase", "master key", "Keep in mind that", "Important:",
      "Recall the", "Name each", "recall each", "Trace ", " <- ", "Directory:", "Catalogue", " | ", "Find ",
      "The grass is green", "hidden within", "quiz you",
  };
  return fragments;
}

std::string_view pick(const std::vector<std::string_view>& options, Rng& rng) {
  HSA_CHECK(!options.empty(), "pick: empty phrasing list");
  return options[rng.below(options.size())];
}

std::span<const std::string_view> legacy_key_words() {
  static constexpr std::string_view kWords[] = {
      "amber",   "falcon",  "lantern", "meadow",  "pepper",  "quartz",  "saffron", "tundra",  "velvet",  "walnut",
      "cobalt",  "dolphin", "emerald", "glacier", "harvest", "ivory",   "jasmine", "kettle",  "lagoon",  "marble",
      "nectar",  "orchid",  "pebble",  "quill",   "raven",   "sapphire", "thistle", "umbrella", "violet", "willow",
      "yarrow",  "zephyr",  "anchor",  "breeze",  "cactus",  "dune",    "ember",   "fern",    "granite", "hazel",
  };
  return kWords;
}

std::string random_key(KeyKind kind, Rng& rng) {
  switch (kind) {
    case KeyKind::word: return std::string(pick_word(kTrainKeyWords, rng));
    case KeyKind::person_name: return std::string(pick_word(kTrainNames, rng));
    case KeyKind::code: {
      std::string s;
      for (int i = 0; i < 2; ++i) s.push_back(static_cast<char>('A' + rng.below(26)));
      return s + std::to_string(10 + rng.below(90));
    }
    case KeyKind::legacy_word: {
      const std::span<const std::string_view> words = legacy_key_words();
      return std::string(words[rng.below(words.size())]);
    }
    case KeyKind::word_pair: return std::string(pick_word(kPairA, rng)) + "-" + std::string(pick_word(kPairB, rng));
    case KeyKind::pseudo_word: return random_pseudo_word(rng);
    case KeyKind::hyphenated:
      return (rng.below(2) ? std::string(pick_word(kTrainAdjectives, rng)) : random_pseudo_word(rng)) + "-" +
             (rng.below(2) ? std::string(pick_word(kTrainKeyWords, rng)) : random_pseudo_word(rng));
    case KeyKind::uuid:
      return random_hex(rng, 8) + "-" + random_hex(rng, 4) + "-" + random_hex(rng, 4) + "-" + random_hex(rng, 4) +
             "-" + random_hex(rng, 12);
  }
  fail("random_key: invalid KeyKind {}", static_cast<int>(kind));
}

std::string random_value(ValueKind kind, Rng& rng) {
  switch (kind) {
    case ValueKind::digits4: return random_digits(rng, 4);
    case ValueKind::digits5: return random_digits(rng, 5);
    case ValueKind::digits6: return random_digits(rng, 6);
    case ValueKind::digits8: return random_digits(rng, 8);
    case ValueKind::word: return std::string(pick_word(kValueWords, rng));
    case ValueKind::hex6: return random_hex(rng, 6);
    case ValueKind::digits7: return random_digits(rng, 7);
    case ValueKind::uuid: return random_key(KeyKind::uuid, rng);
  }
  fail("random_value: invalid ValueKind {}", static_cast<int>(kind));
}

std::string random_pseudo_word(Rng& rng) {
  static constexpr std::string_view kConsonants = "bdfgklmnprstvz", kVowels = "aeiou", kFinals = "nrlks";
  const std::span<const std::string_view> legacy = legacy_key_words();
  for (;;) {
    std::string s;
    const uint64_t syllables = 2 + rng.below(2);
    for (uint64_t i = 0; i < syllables; ++i) {
      s.push_back(kConsonants[rng.below(kConsonants.size())]);
      s.push_back(kVowels[rng.below(kVowels.size())]);
    }
    if (rng.below(2)) s.push_back(kFinals[rng.below(kFinals.size())]);
    // The eval pool's key words stay unseen in training (a made-up word can spell one, e.g. "dune").
    const auto is = [&](std::string_view w) { return w == s; };
    if (std::none_of(legacy.begin(), legacy.end(), is) && std::none_of(std::begin(kPairA), std::end(kPairA), is) &&
        std::none_of(std::begin(kPairB), std::end(kPairB), is))
      return s;
  }
}

std::string random_variable_name(bool upper_case, Rng& rng) {
  std::string s;
  if (upper_case) {  // "QXJ", as the legacy and RULER chains
    for (int i = 0; i < 3; ++i) s.push_back(static_cast<char>('A' + rng.below(26)));
    return s;
  }
  s.push_back(static_cast<char>('a' + rng.below(26)));  // "q7f": never an English word
  s.push_back(static_cast<char>('0' + rng.below(10)));
  s.push_back(static_cast<char>('a' + rng.below(26)));
  return s;
}

std::string fill_template(std::string_view tpl, const std::vector<std::pair<std::string_view, std::string>>& values) {
  std::string out;
  size_t from = 0;
  for (size_t open = tpl.find('{'); open != std::string_view::npos; open = tpl.find('{', from)) {
    const size_t close = tpl.find('}', open);
    HSA_CHECK(close != std::string_view::npos, "fill_template: unclosed '{{' in '{}'", tpl);
    out.append(tpl, from, open - from);
    const std::string_view name = tpl.substr(open + 1, close - open - 1);
    bool found = false;
    for (const auto& [key, value] : values)
      if (key == name) {
        out += value;
        found = true;
        break;
      }
    HSA_CHECK(found, "fill_template: no value for {{{}}} in '{}'", name, tpl);
    from = close + 1;
  }
  out.append(tpl, from, std::string_view::npos);
  return out;
}

}  // namespace hsa

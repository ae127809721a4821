// The phrasing pools: training samples never use a held-out (eval) template, question form, key kind or value
// kind, nor any text of the legacy tasks and RULER; pooled and legacy tasks work with any tokenizer; byte-level
// samples are bit-identical to what the shipped models were trained and evaluated on.
#include "common/word_tokenizer.h"
#include "eval/ruler.h"
#include "text/bpe_tokenizer.h"
#include "text/bpe_trainer.h"
#include "text/task_phrasings.h"
#include "text/tasks.h"

#include <hsa/error.h>
#include <hsa/random.h>

#include <gtest/gtest.h>

#include <set>

using namespace hsa;

namespace {

// Every "what:entry" id a sample of this pool may record.
std::set<std::string> pool_ids(Phrasings phrasings) {
  const PhrasingPool& p = phrasing_pool(phrasings);
  std::set<std::string> ids;
  auto add = [&](const char* what, const std::vector<std::string_view>& list) {
    for (std::string_view e : list) ids.insert(std::string(what) + ":" + std::string(e));
  };
  add("relation", p.keyed_relations);
  add("relation", p.keyless_relations);
  add("needle", p.keyed_needles);
  add("needle", p.keyless_needles);
  add("question", p.keyed_questions);
  add("question", p.plural_questions);
  add("question", p.multi_questions);
  add("question", p.keyless_questions);
  add("question", p.chain_questions);
  add("question", p.list_questions);
  add("assignment", p.value_assignments);
  add("assignment", p.name_assignments);
  add("list_header", p.list_headers);
  add("list_entry", p.list_entries);
  add("header", p.headers);
  add("haystack", p.repeated_fillers);
  for (KeyKind k : p.key_kinds) ids.insert("key:" + key_kind_name(k));
  for (ValueKind v : p.value_kinds) ids.insert("value:" + value_kind_name(v));
  return ids;
}

std::string prompt_of(const TaskSample& s, const Tokenizer& tok) {
  return tok.decode(std::span<const int32_t>(s.tokens).subspan(1, static_cast<size_t>(s.prompt_length - 1)));
}

uint64_t fnv(const void* p, size_t n, uint64_t h) {
  auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

}  // namespace

TEST(TaskPhrasings, PoolsAreDisjoint) {
  const std::set<std::string> train = pool_ids(Phrasings::train), eval = pool_ids(Phrasings::eval);
  for (const std::string& id : train) EXPECT_EQ(eval.count(id), 0u) << id << " is in both pools";
  // No train template contains a reserved (eval, legacy or RULER) fragment.
  for (const std::string& id : train)
    for (std::string_view f : reserved_eval_fragments())
      EXPECT_EQ(id.find(f), std::string::npos) << id << " contains reserved '" << f << "'";
  // Keys of the train kinds never coincide with keys of the eval kinds.
  std::set<std::string> eval_keys;
  Rng rng(1);
  for (KeyKind k : phrasing_pool(Phrasings::eval).key_kinds)
    for (int i = 0; i < 3000; ++i) eval_keys.insert(random_key(k, rng));
  for (KeyKind k : phrasing_pool(Phrasings::train).key_kinds)
    for (int i = 0; i < 3000; ++i) EXPECT_EQ(eval_keys.count(random_key(k, rng)), 0u) << key_kind_name(k);
}

TEST(TaskPhrasings, TrainingSamplesNeverUseHeldOutPhrasings) {
  const std::set<std::string> train = pool_ids(Phrasings::train), eval = pool_ids(Phrasings::eval);
  FillerText filler;
  ByteTokenizer bytes;
  test::WordTokenizer words;
  std::set<std::string> seen;
  for (TaskKind kind : all_task_kinds())
    for (int64_t length : {600, 1500})
      for (uint64_t seed = 0; seed < 600; ++seed) {  // enough draws to cover every question form
        const Tokenizer& tok = seed % 2 ? static_cast<const Tokenizer&>(words) : bytes;
        TaskSample s = make_task_sample(kind, length, seed, filler, tok, Phrasings::train);
        ASSERT_FALSE(s.phrasing.empty());
        for (const std::string& id : s.phrasing) {
          EXPECT_EQ(train.count(id), 1u) << id;
          EXPECT_EQ(eval.count(id), 0u) << id;
          seen.insert(id);
        }
        const std::string text = prompt_of(s, tok) + s.answer;
        for (std::string_view f : reserved_eval_fragments())
          ASSERT_EQ(text.find(f), std::string::npos)
              << task_kind_name(kind) << " seed " << seed << " contains reserved '" << f << "'";
      }
  // The samples really draw from the whole train pool: every key kind, value kind, header and repeated haystack,
  // and most question forms (the keyed ones number a few hundred: 1,200 draws leave some out by chance).
  size_t questions = 0, questions_seen = 0;
  for (const std::string& id : train) {
    if (id.starts_with("key:") || id.starts_with("value:") || id.starts_with("header:") ||
        id.starts_with("haystack:"))
      EXPECT_EQ(seen.count(id), 1u) << id << " never drawn";
    if (id.starts_with("question:")) ++questions, questions_seen += seen.count(id);
  }
  EXPECT_GE(questions_seen * 100, questions * 85) << questions_seen << " of " << questions << " question forms drawn";
}

TEST(TaskPhrasings, EvalPoolBuildsEveryTaskAndRulerUsesReservedText) {
  const std::set<std::string> eval = pool_ids(Phrasings::eval);
  FillerText filler;
  for (TaskKind kind : all_task_kinds())
    for (uint64_t seed = 0; seed < 20; ++seed) {
      TaskSample s = make_task_sample(kind, 1500, seed, filler, ByteTokenizer(), Phrasings::eval);
      for (const std::string& id : s.phrasing) EXPECT_EQ(eval.count(id), 1u) << id;
    }
  // Every RULER prompt carries reserved text, so the training-side check above also keeps RULER held out.
  for (const eval::RulerTaskInfo& info : eval::ruler_tasks()) {
    const std::string prompt = eval::make_ruler_sample(info.task, 2048, 3, filler).prompt;
    bool reserved = false;
    for (std::string_view f : reserved_eval_fragments()) reserved |= prompt.find(f) != std::string::npos;
    EXPECT_TRUE(reserved) << info.name;
  }
  EXPECT_THROW(make_task_sample(TaskKind::kv_lookup, 1000, 1, filler), Error);  // no legacy phrasing
  EXPECT_EQ(parse_phrasings("train"), Phrasings::train);
  EXPECT_THROW(parse_phrasings("nope"), Error);
}

// Any tokenizer: exact length, the answer's tokens marked and decoding to the answer, every needle in the prompt.
TEST(TaskPhrasings, TasksWorkWithASubwordTokenizer) {
  test::WordTokenizer tok;
  FillerText filler;
  for (Phrasings phrasings : {Phrasings::legacy, Phrasings::train})
    for (TaskKind kind : phrasings == Phrasings::legacy ? legacy_task_kinds() : all_task_kinds())
      for (int64_t length : {300, 1000, 4000})
        for (uint64_t seed = 0; seed < 8; ++seed) {
          SCOPED_TRACE(task_kind_name(kind) + " " + phrasings_name(phrasings) + " length " + std::to_string(length));
          TaskSample s = make_task_sample(kind, length, seed, filler, tok, phrasings);
          ASSERT_EQ(static_cast<int64_t>(s.tokens.size()), length);
          ASSERT_EQ(s.answer_mask.size(), s.tokens.size());
          EXPECT_EQ(s.tokens[0], tok.bos_id());
          std::vector<int32_t> answer;
          for (size_t i = 0; i < s.tokens.size(); ++i)
            if (s.answer_mask[i]) answer.push_back(s.tokens[i]);
          EXPECT_EQ(answer, tok.encode(s.answer_text));
          EXPECT_EQ(s.answer_text, " " + s.answer);  // a subword tokenizer: the question's space opens the answer
          EXPECT_EQ(s.answer_mask[static_cast<size_t>(s.prompt_length)], 1);
          // Tokens after the answer can only be eos padding, and the search leaves at most a few.
          const size_t end = static_cast<size_t>(s.prompt_length) + answer.size();
          for (size_t i = end; i < s.tokens.size(); ++i) EXPECT_EQ(s.tokens[i], tok.eos_id());
          EXPECT_LE(s.tokens.size() - end, 3u);
          // Words are ~3 bytes each: a prompt of `length` tokens is much longer than `length` bytes.
          if (length >= 1000) EXPECT_GT(prompt_of(s, tok).size(), static_cast<size_t>(2 * length));
        }
}

// The composed train phrasings run from a few words to a few dozen: a short row takes a draw that fits (bytes: 128
// tokens hold a pass key's shorter needles and questions, not its longest), a long row its first draw.
TEST(TaskPhrasings, ShortRowsTakeAPhrasingThatFits) {
  FillerText filler;
  ByteTokenizer bytes;
  size_t short_needles = 0, long_needles = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    TaskSample s = make_task_sample(TaskKind::passkey, 128, seed, filler, bytes, Phrasings::train);
    ASSERT_EQ(s.tokens.size(), 128u) << seed;
    TaskSample l = make_task_sample(TaskKind::passkey, 4000, seed, filler, bytes, Phrasings::train);
    for (const std::string& id : s.phrasing)
      if (id.starts_with("needle:")) short_needles += id.size();
    for (const std::string& id : l.phrasing)
      if (id.starts_with("needle:")) long_needles += id.size();
  }
  EXPECT_LT(short_needles, long_needles) << "short rows should draw the shorter needle sentences more often";
}

// With a byte-level BPE the asked value is the same tokens in the needle and in the answer (" 48213" both times):
// answering is copying tokens from the context, not translating them. A prompt ending in a space would make the
// answer "48213" (other tokens) after a lone-space token that natural text never has.
TEST(TaskPhrasings, AnswerTokensAreCopiesOfContextTokensWithBpe) {
  FillerText filler;
  Rng rng(3);
  std::string text = filler.take(200000, rng);
  for (int i = 0; i < 4000; ++i) text += " " + std::to_string(rng.below(100000000)) + ".";
  WordCounter counter(BpeTrainOptions{}.special_tokens);
  counter.add(text);
  BpeTrainOptions options;
  options.vocab_size = 2000;
  const BpeTokenizer tok(train_bpe(counter.counts(), options), "test.json");
  for (TaskKind kind : {TaskKind::passkey, TaskKind::multikey_niah, TaskKind::variable_tracking, TaskKind::kv_lookup})
    for (uint64_t seed = 0; seed < 6; ++seed) {
      SCOPED_TRACE(task_kind_name(kind) + " seed " + std::to_string(seed));
      const TaskSample s = make_task_sample(kind, 1500, seed, filler, tok, Phrasings::train);
      const auto prompt_end = s.tokens.begin() + s.prompt_length;
      std::vector<int32_t> answer;
      for (size_t i = 0; i < s.tokens.size(); ++i)
        if (s.answer_mask[i]) answer.push_back(s.tokens[i]);
      EXPECT_EQ(tok.decode(answer), " " + s.answer);
      EXPECT_NE(tok.decode(std::span<const int32_t>(&*(prompt_end - 1), 1)), " ");
      // A needle that opens with its value ("10704 is the door code") and lands at a line start has "\n10704"
      // in the prompt, other tokens than the answer's " 10704"; every other placement must give the same tokens.
      if (prompt_of(s, tok).find("\n" + s.answer) != std::string::npos) continue;
      EXPECT_NE(std::search(s.tokens.begin(), prompt_end, answer.begin(), answer.end()), prompt_end)
          << "the answer's tokens do not occur in the prompt";
    }
  // RULER prompts end before the space too, and their expected values stay in the prompt.
  const eval::RulerSample r = eval::make_ruler_sample(eval::RulerTask::niah_single_1, 2048, 1, filler, tok);
  EXPECT_NE(r.prompt.back(), ' ');
  EXPECT_NE(r.prompt.find(" " + r.expected[0]), std::string::npos);
}

TEST(TaskPhrasings, RulerWorksWithASubwordTokenizer) {
  test::WordTokenizer tok;
  FillerText filler;
  for (const eval::RulerTaskInfo& info : eval::ruler_tasks())
    for (int64_t length : {1024, 4096}) {
      SCOPED_TRACE(std::string(info.name) + " length " + std::to_string(length));
      eval::RulerSample s = eval::make_ruler_sample(info.task, length, 5, filler, tok);
      const int64_t n = static_cast<int64_t>(s.tokens(tok).size());
      EXPECT_LE(n, length);
      EXPECT_GE(n, length - 64);
      for (const std::string& e : s.expected) EXPECT_NE(s.prompt.find(e), std::string::npos) << e;
    }
}

// Hashes of byte-level samples from main before the tasks became tokenizer-aware: the shipped models' training
// and RULER data must not change.
TEST(TaskPhrasings, ByteLevelSamplesMatchTheOriginals) {
  FillerText builtin;
  FillerText corpus(std::string("Alpha beta gamma. Delta epsilon zeta!\nEta theta iota. Kappa lambda mu nu xi.\n"
                                "Omicron pi rho sigma. Tau upsilon.\n"));
  uint64_t h = 0;
  for (const FillerText* f : {&builtin, &corpus})
    for (TaskKind k : legacy_task_kinds())
      for (int64_t len : {256, 1000, 5000})
        for (uint64_t seed = 0; seed < 40; ++seed) {
          TaskSample s = make_task_sample(k, len, seed, *f);
          h = fnv(s.tokens.data(), s.tokens.size() * 4, h);
          h = fnv(s.answer_mask.data(), s.answer_mask.size(), h);
          h = fnv(s.answer.data(), s.answer.size(), h);
          h = fnv(&s.prompt_length, 8, h);
        }
  EXPECT_EQ(h, 0xaecaa3b713f1bfdcull);
  const std::map<std::string, uint64_t> ruler = {
      {"niah_single_1", 0x5c8b593a59f47776ull},
      {"niah_single_2", 0x2a145fd1b4ab0c6aull},
      {"niah_single_3", 0x736c942f8f92088cull},
      {"niah_multikey_1", 0x290031ce575f3532ull},
      {"niah_multikey_2", 0xa974b137311775c4ull},
      {"niah_multikey_3", 0x1220dca4593d5d96ull},
      {"niah_multivalue", 0x9fd02d066bbb5a26ull},
      {"niah_multiquery", 0xeb4941ebdd528f5aull},
      {"vt", 0x0401977c89bcbceaull},
      {"cwe", 0xee36086c03836598ull},
      {"fwe", 0x7a09cc18908e2e2cull}
  };
  for (const eval::RulerTaskInfo& info : eval::ruler_tasks()) {
    uint64_t r = 0;
    for (int64_t len : {1024, 1500, 4096, 16384})
      for (uint64_t seed = 0; seed < 6; ++seed) {
        eval::RulerSample s = eval::make_ruler_sample(info.task, len, seed, builtin);
        r = fnv(s.prompt.data(), s.prompt.size(), r);
        for (const std::string& e : s.expected) r = fnv(e.data(), e.size(), r);
        std::vector<int32_t> t = s.tokens();
        r = fnv(t.data(), t.size() * 4, r);
      }
    EXPECT_EQ(r, ruler.at(std::string(info.name))) << info.name;
  }
}

// `hsa ruler --tasks heldout`: the training tasks in eval phrasings, with their answers as expected strings.
TEST(TaskPhrasings, RulerHeldOutTasks) {
  EXPECT_EQ(eval::parse_ruler_task_list("heldout").size(), eval::heldout_tasks().size());
  EXPECT_EQ(eval::parse_ruler_task_list("all").size(), 11u);  // RULER's average stays RULER's
  FillerText filler;
  test::WordTokenizer words;
  const ByteTokenizer bytes;
  for (const eval::RulerTaskInfo& info : eval::heldout_tasks()) {
    EXPECT_EQ(eval::parse_ruler_task(info.name), info.task);
    for (bool subword : {false, true}) {
      const Tokenizer& tok = subword ? static_cast<const Tokenizer&>(words) : bytes;
      eval::RulerSample s = eval::make_ruler_sample(info.task, 2048, 9, filler, tok);
      EXPECT_LE(static_cast<int64_t>(s.tokens(tok).size()), 2048);
      EXPECT_GE(static_cast<int64_t>(s.tokens(tok).size()), 2048 - 200);
      ASSERT_FALSE(s.expected.empty());
      for (const std::string& e : s.expected) EXPECT_NE(s.prompt.find(e), std::string::npos) << info.name << " " << e;
    }
  }
  EXPECT_GE(eval::make_ruler_sample(eval::RulerTask::heldout_multi_value, 2048, 9, filler).expected.size(), 2u);
}

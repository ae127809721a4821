// Training on the language-model + task mixture end to end on the CPU: the language-model loss falls and is
// logged apart from the task rows' answer loss, a resumed mixture run is exact, and a shard from another
// tokenizer is refused.
#include "text/bpe_tokenizer.h"
#include "text/bpe_trainer.h"
#include "text/filler.h"
#include "text/token_shard.h"
#include "text/tokenizer.h"
#include "train/trainer.h"

#include <hsa/error.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace hsa;

namespace {

std::string fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

TrainOptions micro_options(const std::string& out) {
  TrainOptions o;
  o.config_path = std::string(HSA_SOURCE_DIR) + "/configs/micro.json";
  o.out_dir = out;
  o.batch = 8;
  o.steps = 60;
  o.schedule.lr = 1e-2;
  o.schedule.warmup_steps = 5;
  o.eval_every = 0;
  o.save_every = 0;
  o.quiet = true;
  return o;
}

// A byte-level shard of English-like prose (the built-in filler), documents separated by eos.
std::string prose_shard(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/prose.bin";
  FillerText filler;
  Rng rng(17);
  std::vector<int32_t> tokens;
  for (int doc = 0; doc < 40; ++doc) {
    for (int32_t t : ByteTokenizer().encode(filler.take(600, rng))) tokens.push_back(t);
    tokens.push_back(ByteTokenizer::kEos);
  }
  write_token_shard(path, tokens);
  return path;
}

TrainOptions micro_mixture(const std::string& out, const std::string& shard) {
  TrainOptions o = micro_options(out);
  o.data_path = shard;
  o.tasks = {"passkey", "kv_lookup"};
  o.phrasings = "train";
  o.answer_only_loss = false;
  o.task_share = 0.25;
  o.answer_weight = 5.0;
  o.seq_len = 320;  // room for the held-out phrasings' uuids too
  return o;
}

}  // namespace

// The language-model + task mixture: the language-model loss falls, and the log reports it apart from the task
// rows' answer loss (on train and held-out phrasings).
TEST(MixtureTrain, LanguageModelLossFalls) {
  const std::string out = fresh_dir("hsa_train_mixture");
  TrainOptions o = micro_mixture(out, prose_shard(fresh_dir("hsa_train_mixture_data")));
  o.steps = 30;
  o.batch = 4;
  o.eval_every = 5;
  o.eval_batches = 1;
  TrainResult r = train(o);
  ASSERT_EQ(r.losses.size(), 30u);
  std::ifstream log(out + "/train_log.jsonl");
  std::vector<double> lm, task, heldout;
  for (std::string line; std::getline(log, line);) {
    auto j = nlohmann::json::parse(line);
    if (!j.contains("eval_lm_loss")) continue;
    lm.push_back(j["eval_lm_loss"].get<double>());
    task.push_back(j["eval_task_loss"].get<double>());
    heldout.push_back(j["eval_heldout_task_loss"].get<double>());
  }
  ASSERT_EQ(lm.size(), 6u);
  // From ln(260) = 5.6 at the start (uniform over bytes) to well below it, and still falling after step 5.
  EXPECT_LT(lm.back(), lm.front() - 0.2) << "eval_lm_loss " << lm.front() << " -> " << lm.back();
  EXPECT_LT(lm.back(), std::log(260.0) * 0.6);
  for (double t : task) EXPECT_TRUE(std::isfinite(t) && t > 0);
  for (double t : heldout) EXPECT_TRUE(std::isfinite(t) && t > 0);
}

TEST(MixtureTrain, ResumeReproducesTheUninterruptedRun) {
  const std::string shard = prose_shard(fresh_dir("hsa_train_mixture_resume_data"));
  TrainOptions full = micro_mixture(fresh_dir("hsa_train_mixture_full"), shard);
  full.steps = 6;
  full.batch = 4;
  TrainResult uninterrupted = train(full);
  TrainOptions part = full;
  part.out_dir = fresh_dir("hsa_train_mixture_part");
  part.stop_after = 3;
  train(part);
  TrainOptions again;
  again.out_dir = part.out_dir;
  again.resume = true;
  again.steps = full.steps;
  again.quiet = true;
  TrainResult resumed = train(again);
  ASSERT_EQ(resumed.losses.size(), uninterrupted.losses.size());
  for (size_t i = 0; i < uninterrupted.losses.size(); ++i)
    EXPECT_EQ(resumed.losses[i], uninterrupted.losses[i]) << "step " << i + 1;
}

TEST(MixtureTrain, ShardOutsideTheVocabularyIsAClearError) {
  const std::string dir = fresh_dir("hsa_train_bad_vocab");
  std::filesystem::create_directories(dir);
  std::vector<int32_t> tokens(4000, 65);
  tokens[123] = 5000;  // a subword id: the micro model has 260 tokens
  write_token_shard(dir + "/shard.bin", tokens);
  TrainOptions o = micro_options(dir + "/run");
  o.data_path = dir + "/shard.bin";
  o.steps = 1;
  try {
    train(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 5000"), std::string::npos) << e.what();
  }
}

// The mixture with a BPE model: the tokenizer file lives apart from the config (--tokenizer), task rows are
// tokenised with it, and a second stage (--init) finds it in the first stage's checkpoint.
TEST(MixtureTrain, SubwordTokenizerFromAnotherDirectoryAndSecondStage) {
  const std::string dir = fresh_dir("hsa_train_mixture_bpe");
  std::filesystem::create_directories(dir + "/tok");
  FillerText filler;
  Rng rng(3);
  const std::string text = filler.take(200000, rng);
  WordCounter counter(BpeTrainOptions{}.special_tokens);
  counter.add(text + " 0123456789 access code locker ticket Question Answer: table list");
  BpeTrainOptions options;
  options.vocab_size = 600;
  const std::string tok_path = dir + "/tok/tokenizer.json";
  BpeTokenizer tok(train_bpe(counter.counts(), options), tok_path);
  tok.save(tok_path);
  write_token_shard(dir + "/data.bin", tok.encode(text, /*add_bos=*/true));
  nlohmann::json cfg;
  std::ifstream(std::string(HSA_SOURCE_DIR) + "/configs/micro.json") >> cfg;
  cfg["vocab_size"] = tok.vocab_size();
  std::ofstream(dir + "/cfg.json") << cfg.dump();

  TrainOptions o = micro_options(dir + "/stage1");
  o.config_path = dir + "/cfg.json";
  o.tokenizer_path = tok_path;
  o.data_path = dir + "/data.bin";
  o.tasks = {"passkey", "multi_query"};
  o.phrasings = "train";
  o.task_share = 0.5;
  o.seq_len = 256;
  o.batch = 4;
  o.steps = 3;
  o.eval_every = 3;
  o.eval_batches = 1;
  TrainResult first = train(o);
  ASSERT_EQ(first.losses.size(), 3u);
  for (double l : first.losses) EXPECT_TRUE(std::isfinite(l));

  TrainOptions next = o;
  next.config_path.clear();
  next.tokenizer_path.clear();
  next.init_from = dir + "/stage1";
  next.out_dir = dir + "/stage2";
  next.seq_len = 384;
  TrainResult second = train(next);
  ASSERT_EQ(second.losses.size(), 3u);
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(second.checkpoint) / "tokenizer.json"));
  std::filesystem::remove_all(dir);
}

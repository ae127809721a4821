// Training end to end on the CPU: the loss on the passkey answer falls, and an interrupted run resumed from
// its checkpoint reproduces the uninterrupted loss curve exactly.
#include "text/filler.h"
#include "text/token_shard.h"
#include "text/tokenizer.h"
#include "train/trainer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

using namespace hsa;

namespace {

TrainOptions micro_passkey(const std::string& out) {
  TrainOptions o;
  o.config_path = std::string(HSA_SOURCE_DIR) + "/configs/micro.json";
  o.out_dir = out;
  o.tasks = {"passkey"};
  o.phrasings = "legacy";
  o.answer_only_loss = true;
  o.batch = 8;
  o.seq_len = 96;
  o.steps = 60;
  o.schedule.lr = 1e-2;
  o.schedule.warmup_steps = 5;
  o.eval_every = 0;
  o.save_every = 0;
  o.quiet = true;
  return o;
}

std::string fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  return dir.string();
}

double mean(const std::vector<double>& v, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += v[i];
  return s / double(to - from);
}

}  // namespace

TEST(Train, PasskeyAnswerLossFalls) {
  auto start = std::chrono::steady_clock::now();
  TrainOptions o = micro_passkey(fresh_dir("hsa_train_passkey"));
  TrainResult r = train(o);
  ASSERT_EQ(r.losses.size(), 60u);
  double first = mean(r.losses, 0, 5), last = mean(r.losses, 55, 60);
  // The answer is 5 random digits: once the model knows an answer is digits, its loss is at most ln(10)
  // per token against ln(260) at the start, so falling below half the start shows real learning.
  EXPECT_LT(last, 0.5 * first) << "start " << first << " end " << last;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 120.0);
}

TEST(Train, ResumeReproducesTheUninterruptedRun) {
  TrainOptions full = micro_passkey(fresh_dir("hsa_train_full"));
  full.steps = 8;
  full.batch = 2;
  full.seq_len = 96;
  TrainResult uninterrupted = train(full);

  TrainOptions part = full;
  part.out_dir = fresh_dir("hsa_train_resumed");
  part.stop_after = 3;
  TrainResult first = train(part);
  EXPECT_EQ(first.final_step, 3);
  // Resume from the run directory alone: the recipe comes from the run's saved options.
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

// The baselines of the reference recipe (tools/train-reference --config): the tiny model with HSA removed
// (SWA only) and with dense causal attention. They must load, train and save like the HSA model.
TEST(Train, BaselineConfigsTrain) {
  for (const char* name : {"tiny-swa", "tiny-dense"}) {
    TrainOptions o = micro_passkey(fresh_dir(std::string("hsa_train_") + name));
    o.config_path = std::string(HSA_SOURCE_DIR) + "/configs/" + name + ".json";
    o.batch = 2;
    o.seq_len = 80;
    o.steps = 3;
    TrainResult r = train(o);
    ASSERT_EQ(r.losses.size(), 3u) << name;
    for (double l : r.losses) EXPECT_TRUE(std::isfinite(l) && l > 0) << name;
    EXPECT_FALSE(r.checkpoint.empty()) << name;
  }
}

namespace {

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
  TrainOptions o = micro_passkey(out);
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
TEST(Train, MixtureLanguageModelLossFalls) {
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

TEST(Train, MixtureResumeReproducesTheUninterruptedRun) {
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

TEST(Train, ShardOutsideTheVocabularyIsAClearError) {
  const std::string dir = fresh_dir("hsa_train_bad_vocab");
  std::filesystem::create_directories(dir);
  std::vector<int32_t> tokens(4000, 65);
  tokens[123] = 5000;  // a subword id: the micro model has 260 tokens
  write_token_shard(dir + "/shard.bin", tokens);
  TrainOptions o = micro_passkey(dir + "/run");
  o.tasks.clear();
  o.data_path = dir + "/shard.bin";
  o.steps = 1;
  try {
    train(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 5000"), std::string::npos) << e.what();
  }
}

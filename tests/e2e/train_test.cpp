// Training end to end on the CPU: the loss on the passkey answer falls, and an interrupted run resumed from
// its checkpoint reproduces the uninterrupted loss curve exactly.
#include "model/config.h"
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <unistd.h>

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
  auto dir = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
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

// The chunk encoder trains: the passkey recipe on the micro model with one encoder block learns as the
// mean-pooling model does, and the shipped tiny-encoder config loads, trains and saves.
TEST(Train, ChunkEncoderPasskeyAnswerLossFalls) {
  const std::string dir = fresh_dir("hsa_train_encoder_passkey");
  ModelConfig config = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  config.chunk_encoder_layers = 1;
  std::filesystem::create_directories(dir);
  const std::string config_path = dir + "/micro-encoder.json";
  config.save(config_path);
  TrainOptions o = micro_passkey(dir + "/run");
  o.config_path = config_path;
  TrainResult r = train(o);
  ASSERT_EQ(r.losses.size(), 60u);
  double first = mean(r.losses, 0, 5), last = mean(r.losses, 55, 60);
  EXPECT_LT(last, 0.5 * first) << "start " << first << " end " << last;
  std::filesystem::remove_all(dir);
}

TEST(Train, TinyEncoderConfigTrains) {
  TrainOptions o = micro_passkey(fresh_dir("hsa_train_tiny_encoder"));
  o.config_path = std::string(HSA_SOURCE_DIR) + "/configs/tiny-encoder.json";
  o.batch = 2;
  o.seq_len = 80;
  o.steps = 3;
  TrainResult r = train(o);
  ASSERT_EQ(r.losses.size(), 3u);
  for (double l : r.losses) EXPECT_TRUE(std::isfinite(l) && l > 0);
  EXPECT_FALSE(r.checkpoint.empty());
}

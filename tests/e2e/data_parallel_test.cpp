// Data-parallel training on the CPU: two `hsa train` processes started the way torchrun starts them (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), meeting over loopback with the tcp backend, train like one
// process with twice the batch; rank 0 alone writes; a resume on another number of processes and a refusal on
// rank 0 end both processes with a message.
#include "model/checkpoint.h"

#include "common/launch_ranks.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace hsa;
namespace fs = std::filesystem;

namespace {

struct Dir {
  fs::path path;
  explicit Dir(const std::string& name)
      : path(fs::temp_directory_path() / ("hsa_dp_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Dir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string read_text(const std::string& path) { return hsa::testing::read_whole_file(path); }

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The micro model with every layer dense: the MoE load-balancing loss is a function of a process's whole
// batch, so with experts two half batches do not add up to the full one exactly (each process balances its
// own rows, as in other data-parallel trainers), and the router's weights drift apart.
std::string dense_micro_config(const Dir& dir) {
  nlohmann::json c = nlohmann::json::parse(read_text(HSA_SOURCE_DIR "/configs/micro.json"));
  c["first_k_dense_layers"] = 3;  // all three layers
  const std::string path = dir / "dense-micro.json";
  std::ofstream(path) << c.dump(2);
  return path;
}

// Every token a target and weighted alike, so each process's mean loss is half the global mean's terms.
std::string recipe(const std::string& config, const std::string& out, int batch) {
  return "train -c '" + config + "' -o '" + out + "' --task passkey --phrasings legacy --answer-weight 1 -b " +
         std::to_string(batch) + " -L 96 -s 4 --lr 1e-2 --warmup 1 --eval-every 0 --save-every 0 --seed 5 -q";
}

// `args` of `hsa` on `world` processes at once (torchrun's variables set for each); waits for all of them.
hsa::testing::RankRuns launch(const Dir& dir, int world, const std::string& args) {
  hsa::testing::RankRuns runs =
      hsa::testing::launch_ranks(dir.path, world, "'" HSA_CLI_PATH "' " + args + " --dist-timeout 60", "OMP_NUM_THREADS=1");
  EXPECT_EQ(runs.codes.size(), size_t(world)) << "the launch script failed";
  runs.codes.resize(size_t(world), -1);
  runs.outputs.resize(size_t(world));
  return runs;
}

int run_single(const Dir& dir, const std::string& args) {
  const std::string command = "OMP_NUM_THREADS=1 '" HSA_CLI_PATH "' " + args + " > '" + dir / "single" + "' 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<double> logged_losses(const std::string& run) {
  std::vector<double> losses;
  std::ifstream in(run + "/train_log.jsonl");
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) losses.push_back(nlohmann::json::parse(line).at("loss").get<double>());
  return losses;
}

}  // namespace

TEST(DataParallel, TwoProcessesMatchOneWithTwiceTheBatch) {
  Dir dir("match");
  const std::string config = dense_micro_config(dir);
  ASSERT_EQ(run_single(dir, recipe(config, dir / "one", 4)), 0) << read_text(dir / "single");
  hsa::testing::RankRuns two = launch(dir, 2, recipe(config, dir / "two", 2));
  for (int r = 0; r < 2; ++r) ASSERT_EQ(two.codes[size_t(r)], 0) << "rank " << r << ":\n" << two.outputs[size_t(r)];

  // Rank 0 logged each step once (the loss is the mean over both processes); rank 1 wrote nothing of its own.
  const std::vector<double> one_loss = logged_losses(dir / "one"), two_loss = logged_losses(dir / "two");
  ASSERT_EQ(one_loss.size(), 4u);
  ASSERT_EQ(two_loss.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(two_loss[i], one_loss[i], 1e-4 * one_loss[i]) << "step " << i + 1;
  EXPECT_EQ(nlohmann::json::parse(read_text(dir / "two/train_options.json")).at("world_size"), 2);

  // After 4 updates the weights agree: the averaged gradients were the full batch's.
  Checkpoint a = load_checkpoint(dir / "one/checkpoints/step-000004");
  Checkpoint b = load_checkpoint(dir / "two/checkpoints/step-000004");
  ASSERT_EQ(a.params.size(), b.params.size());
  // AdamW's first steps move each weight by about lr x sign(gradient): a gradient that is zero up to rounding
  // (a token no row holds) may get another sign in the other summation order and move that weight 2 lr apart.
  // So: nearly every weight agrees closely, and the mean difference is far below one step.
  int64_t total = 0, apart = 0;
  double sum_diff = 0;
  for (const auto& [name, t] : a.params) {
    std::vector<double> x = t.to_vector(), y = b.params.at(name).to_vector();
    ASSERT_EQ(x.size(), y.size()) << name;
    for (size_t i = 0; i < x.size(); ++i) {
      const double d = std::abs(x[i] - y[i]);
      sum_diff += d;
      apart += d > 1e-4;
      ++total;
    }
  }
  std::printf("weights: %lld of %lld differ by > 1e-4, mean difference %.3g\n", (long long)apart, (long long)total,
              sum_diff / double(total));
  EXPECT_LE(double(apart), 0.001 * double(total));
  EXPECT_LT(sum_diff / double(total), 1e-6);
  EXPECT_GT(std::abs(a.params.begin()->second.to_vector()[0]), 0.0);

  // The run was trained on 2 processes: one process may not resume it (exit 2, naming both counts).
  EXPECT_EQ(run_single(dir, "train --resume -o '" + dir / "two" + "' -s 6 -q"), 2);
  EXPECT_TRUE(has(read_text(dir / "single"), "was trained on 2 processes and this launch has 1")) << read_text(dir / "single");
}

// Weights of two checkpoints: the number of elements more than 1e-4 apart, and the mean difference.
std::pair<int64_t, double> weight_gap(const std::string& a_dir, const std::string& b_dir, int64_t* total_out) {
  Checkpoint a = load_checkpoint(a_dir), b = load_checkpoint(b_dir);
  int64_t total = 0, apart = 0;
  double sum_diff = 0;
  for (const auto& [name, t] : a.params) {
    std::vector<double> x = t.to_vector(), y = b.params.at(name).to_vector();
    for (size_t i = 0; i < x.size(); ++i) {
      const double d = std::abs(x[i] - y[i]);
      sum_diff += d;
      apart += d > 1e-4;
      ++total;
    }
  }
  *total_out = total;
  return {apart, sum_diff / double(std::max<int64_t>(total, 1))};
}

// ZeRO-1 (--zero1): the sharded optimizer makes the update of plain data parallelism (to rounding: the gradient
// norm is summed in slices), and a run stopped and resumed on as many processes continues exactly.
TEST(DataParallel, Zero1MatchesPlainDataParallelAndResumesExactly) {
  Dir dir("zero1");
  const std::string config = dense_micro_config(dir);
  auto ok = [](const hsa::testing::RankRuns& runs) {
    for (size_t r = 0; r < runs.codes.size(); ++r)
      if (runs.codes[r] != 0) return "rank " + std::to_string(r) + ":\n" + runs.outputs[r];
    return std::string();
  };
  EXPECT_EQ(ok(launch(dir, 2, recipe(config, dir / "plain", 2))), "");
  EXPECT_EQ(ok(launch(dir, 2, recipe(config, dir / "zero", 2) + " --zero1")), "");
  const std::vector<double> plain = logged_losses(dir / "plain"), zero = logged_losses(dir / "zero");
  ASSERT_EQ(plain.size(), 4u);
  ASSERT_EQ(zero.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(zero[i], plain[i], 1e-5 * plain[i]) << "step " << i + 1;
  int64_t total = 0;
  auto [apart, mean_diff] = weight_gap(dir / "plain/checkpoints/step-000004", dir / "zero/checkpoints/step-000004", &total);
  EXPECT_LE(double(apart), 0.001 * double(total));
  EXPECT_LT(mean_diff, 1e-6);

  EXPECT_EQ(ok(launch(dir, 2, recipe(config, dir / "resumed", 2) + " --zero1 --stop-after 2")), "");
  EXPECT_EQ(ok(launch(dir, 2, "train --resume -o '" + dir / "resumed" + "' -s 4 -q --zero1")), "");
  const std::vector<double> resumed = logged_losses(dir / "resumed");
  ASSERT_EQ(resumed.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(resumed[i], zero[i]) << "step " << i + 1;
  auto [resumed_apart, resumed_diff] =
      weight_gap(dir / "zero/checkpoints/step-000004", dir / "resumed/checkpoints/step-000004", &total);
  EXPECT_EQ(resumed_apart, 0);
  EXPECT_EQ(resumed_diff, 0.0);
}

TEST(DataParallel, RankZerosRefusalEndsEveryProcess) {
  Dir dir("refusal");
  const std::string config = dense_micro_config(dir);
  ASSERT_EQ(run_single(dir, recipe(config, dir / "run", 2)), 0) << read_text(dir / "single");
  // A fresh run over an existing one: rank 0 refuses (exit 2); rank 1 learns of it and stops (exit 1).
  hsa::testing::RankRuns two = launch(dir, 2, recipe(config, dir / "run", 1));
  EXPECT_EQ(two.codes[0], 2) << two.outputs[0];
  EXPECT_TRUE(has(two.outputs[0], "already holds a run")) << two.outputs[0];
  EXPECT_EQ(two.codes[1], 1) << two.outputs[1];
  EXPECT_TRUE(has(two.outputs[1], "1 of 2 processes could not set up the run")) << two.outputs[1];
}

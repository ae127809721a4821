// Readers of model files refuse what is not a regular file (a FIFO would block them forever), strict JSON
// refuses repeated keys, sizes that overflow a byte count are errors, and a broken model cannot decode garbage.
#include "common/error_text.h"
#include "common/temp_dir.h"
#include "infer/sampler.h"
#include "model/config.h"
#include "model/param_spec.h"
#include "model/safetensors.h"
#include "util/file_util.h"
#include "util/json_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <future>

using namespace hsa;
using hsa::testing::error_of;
using hsa::testing::has;
using hsa::testing::TempDir;

namespace {

// Runs fn on another thread and fails the test instead of hanging when it does not return within 10 s.
template <class Fn> std::string error_within_seconds(Fn fn) {
  auto result = std::async(std::launch::async, [fn] { return error_of(fn); });
  if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "the reader blocked";
    std::_Exit(1);  // the blocked thread cannot be joined
  }
  return result.get();
}

nlohmann::json micro_config_json() {
  std::ifstream in(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  return nlohmann::json::parse(in);
}

}  // namespace

TEST(FileSafety, FifoAsWeightsOrConfigIsRefusedWithoutBlocking) {
  TempDir dir;
  const std::string fifo = dir.file("model.safetensors");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  EXPECT_TRUE(has(error_within_seconds([&] { load_safetensors(fifo); }), "not a regular file (a FIFO)"));
  const std::string cfg = dir.file("config.json");
  ASSERT_EQ(::mkfifo(cfg.c_str(), 0644), 0);
  EXPECT_TRUE(has(error_within_seconds([&] { ModelConfig::from_file(cfg); }), "not a regular file"));
  EXPECT_TRUE(has(error_of([&] { read_regular_file(dir.path.string(), "config"); }), "a directory"));
}

TEST(FileSafety, StrictJsonRefusesRepeatedKeysAtAnyDepth) {
  EXPECT_EQ(parse_json_strict(R"({"a": {"b": 1}, "c": {"b": 2}})", "t")["c"]["b"], 2);
  EXPECT_TRUE(has(error_of([] { parse_json_strict(R"({"a": 1, "a": 2})", "t.json"); }), "duplicate key 'a'"));
  EXPECT_TRUE(has(error_of([] { parse_json_strict(R"([{"x": {"y": 1, "y": 1}}])", "t"); }), "duplicate key 'y'"));
  EXPECT_TRUE(has(error_of([] { parse_json_strict("{", "f.json"); }), "f.json: invalid JSON"));
}

TEST(FileSafety, ConfigWithARepeatedKeyIsRefused) {
  TempDir dir;
  std::string text = micro_config_json().dump();
  text.insert(1, "\"hidden_size\": 64, ");
  std::ofstream(dir.file("config.json")) << text;
  std::string e = error_of([&] { ModelConfig::from_file(dir.file("config.json")); });
  EXPECT_TRUE(has(e, "duplicate key 'hidden_size'")) << e;
}

TEST(FileSafety, SizesThatOverflowAByteCountAreConfigErrors) {
  nlohmann::json j = micro_config_json();
  j["hidden_size"] = int64_t(1) << 62;
  EXPECT_TRUE(has(error_of([&] { ModelConfig::from_json(j); }), "'hidden_size' is 4611686018427387904, more than"));
  j = micro_config_json();
  j["vocab_size"] = (int64_t(1) << 31) - 1;
  j["hidden_size"] = (int64_t(1) << 31) - 2;
  EXPECT_TRUE(has(error_of([&] { ModelConfig::from_json(j); }), "more than a byte count can hold"));
  j = micro_config_json();
  j["num_lower_layers"] = 1000000;
  EXPECT_TRUE(has(error_of([&] { ModelConfig::from_json(j); }), "layers, more than the supported"));
}

TEST(FileSafety, TensorShapesThatOverflowAreErrorsNotCrashes) {
  const int64_t big = int64_t(1) << 40;
  EXPECT_TRUE(has(error_of([&] { Tensor::empty({big, big}); }), "overflows"));
  EXPECT_TRUE(has(error_of([&] { Tensor::empty({int64_t(1) << 62, 4}); }), "overflow"));
}

TEST(FileSafety, SamplingNonFiniteLogitsFails) {
  Rng rng(1);
  Tensor logits = Tensor::from_values({0.5, NAN, 1.0}, {3});
  EXPECT_TRUE(has(error_of([&] { sample_token(logits, {}, rng); }), "non-finite"));
  logits = Tensor::from_values({0.5, INFINITY, 1.0}, {3});
  EXPECT_TRUE(has(error_of([&] { sample_token(logits, {0.7, 0.9}, rng); }), "non-finite"));
}

#include "model/config.h"
#include "model/param_spec.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

using namespace hsa;
using nlohmann::json;

namespace {

// The shipped configs, found from this file's location (tests/unit/ -> repository root).
std::string config_path(const char* name) {
  return (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "configs" / name).string();
}

json micro_json() {
  return json{{"hidden_size", 32},      {"num_attention_heads", 2}, {"num_key_value_heads", 1},
              {"head_dim", 16},         {"vocab_size", 260},        {"intermediate_size", 64},
              {"sliding_window", 16},   {"retrieval_dim", 16},      {"num_lower_layers", 1},
              {"num_upper_groups", 1},  {"group_layers", 1}};
}

// The message of loading `j` as a config, or "" when it loads.
std::string load_error(const json& j) {
  try {
    ModelConfig::from_json(j, "test.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(ModelConfig, ShippedConfigsLoad) {
  ModelConfig tiny = ModelConfig::from_file(config_path("tiny.json"));
  EXPECT_EQ(tiny.num_layers(), 6);
  EXPECT_EQ(tiny.hsa_sliding_window, 64);
  EXPECT_EQ(tiny.sliding_window, 128);
  EXPECT_TRUE(tiny.tie_word_embeddings);
  EXPECT_EQ(tiny.memory_layer(), 2);
  std::vector<bool> hsa, moe;
  for (int64_t i = 0; i < tiny.num_layers(); ++i) hsa.push_back(tiny.is_hsa_layer(i)), moe.push_back(tiny.is_moe_layer(i));
  EXPECT_EQ(hsa, (std::vector<bool>{false, false, true, false, true, false}));
  EXPECT_EQ(moe, (std::vector<bool>{false, true, true, true, true, true}));
  EXPECT_EQ(tiny.window_of_layer(2), 64);
  EXPECT_EQ(tiny.window_of_layer(3), 128);

  ModelConfig micro = ModelConfig::from_file(config_path("micro.json"));
  EXPECT_EQ(micro.num_layers(), 3);
  EXPECT_EQ(micro.chunk_size, 8);
  EXPECT_EQ(micro.num_experts, 2);
}

TEST(ModelConfig, DefaultsAndHsaWindowFollowsSlidingWindow) {
  ModelConfig c = ModelConfig::from_json(micro_json());
  EXPECT_EQ(c.hsa_sliding_window, 16);
  EXPECT_EQ(c.chunk_size, 64);
  EXPECT_EQ(c.chunk_topk, 8);
  EXPECT_EQ(c.first_k_dense_layers, 1);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.router_aux_loss_coef, 0.01);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.chunk_weighting, "softmax");
  EXPECT_EQ(c.model_type, "hsa_ultralong");
  EXPECT_FALSE(c.is_moe_layer(1));
}

TEST(ModelConfig, JsonAndFileRoundTrip) {
  ModelConfig c = ModelConfig::from_file(config_path("tiny.json"));
  c.rope_theta = 5e5;
  c.chunk_weighting = "stick_breaking";
  ModelConfig d = ModelConfig::from_json(c.to_json());
  EXPECT_EQ(c.to_json(), d.to_json());
  auto dir = std::filesystem::temp_directory_path() / ("hsa_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  c.save((dir / "config.json").string());
  EXPECT_FALSE(std::filesystem::exists(dir / "config.json.tmp"));
  EXPECT_EQ(ModelConfig::from_file((dir / "config.json").string()).to_json(), c.to_json());
  std::filesystem::remove_all(dir);
}

TEST(ModelConfig, UnknownKeySuggestsClosest) {
  json j = micro_json();
  j["num_attention_head"] = 2;
  j["hiden_size"] = 32;
  j["totally_unrelated_option"] = 1;
  std::string msg = load_error(j);
  EXPECT_TRUE(contains(msg, "unknown key 'num_attention_head' (did you mean 'num_attention_heads'?)")) << msg;
  EXPECT_TRUE(contains(msg, "unknown key 'hiden_size' (did you mean 'hidden_size'?)")) << msg;
  EXPECT_TRUE(contains(msg, "unknown key 'totally_unrelated_option'\n") || msg.ends_with("'totally_unrelated_option'"))
      << msg;
  EXPECT_TRUE(contains(msg, "test.json")) << msg;
}

TEST(ModelConfig, ListsEveryProblemAtOnce) {
  json j = micro_json();
  j.erase("vocab_size");
  j["hidden_size"] = -4;
  j["num_attention_heads"] = 3;  // not a multiple of 2 kv heads
  j["num_key_value_heads"] = 2;
  j["head_dim"] = 15;
  j["retrieval_dim"] = 17;
  j["qk_norm"] = "yes";
  j["sliding_window"] = 16.5;
  j["num_experts"] = 2;
  j["num_experts_per_tok"] = 3;
  j["first_k_dense_layers"] = 9;
  j["chunk_weighting"] = "sigmoid";
  j["chunk_encoder_layers"] = -1;
  std::string msg = load_error(j);
  const std::vector<std::string> expected = {
      "missing required key 'vocab_size'",
      "'hidden_size' must be positive, got -4",
      "num_attention_heads (3) must be a multiple of num_key_value_heads (2)",
      "'head_dim' must be even",
      "retrieval_dim (17) must be a multiple of num_key_value_heads (2)",
      "'qk_norm' must be a boolean, got string \"yes\"",
      "'sliding_window' must be an integer, got float 16.5",
      "num_experts_per_tok (3) exceeds num_experts (2)",
      "moe_intermediate_size is not set",
      "first_k_dense_layers (9) exceeds the number of layers (3)",
      "unknown chunk_weighting 'sigmoid'",
      "'chunk_encoder_layers' must be >= 0, got -1",
  };
  for (const std::string& e : expected) EXPECT_TRUE(contains(msg, e)) << "missing '" << e << "' in:\n" << msg;
  EXPECT_TRUE(contains(msg, "12 problems")) << msg;
  // One problem per line.
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 12) << msg;
}

TEST(ModelConfig, MoeConsistency) {
  json j = micro_json();
  j["num_experts"] = 4;
  j["moe_intermediate_size"] = 8;
  EXPECT_TRUE(contains(load_error(j), "num_experts is 4 but num_experts_per_tok is 0"));
  j["num_experts_per_tok"] = 2;
  EXPECT_EQ(load_error(j), "");
  j["model_type"] = "llama";
  EXPECT_TRUE(contains(load_error(j), "unsupported model_type 'llama'"));
  EXPECT_TRUE(contains(load_error(json::array()), "expected a JSON object"));
}

TEST(ModelConfig, ChunkEncoderNeedsHsaGroups) {
  json j = micro_json();
  j["chunk_encoder_layers"] = 2;
  EXPECT_EQ(load_error(j), "");
  EXPECT_EQ(ModelConfig::from_json(j, "test.json").chunk_encoder_layers, 2);
  j["num_lower_layers"] = 2;
  j["num_upper_groups"] = 0;
  EXPECT_TRUE(contains(load_error(j), "chunk_encoder_layers = 2 but num_upper_groups is 0")) << load_error(j);
}

TEST(ModelConfig, ChunkEncoderLandmarkIsClsOrMeanOfTokensAndNeedsTheEncoder) {
  json j = micro_json();
  j["chunk_encoder_layers"] = 1;
  j["chunk_encoder_landmark"] = "mean";
  EXPECT_EQ(load_error(j), "");
  EXPECT_EQ(ModelConfig::from_json(j, "test.json").chunk_encoder_landmark, "mean");
  j["chunk_encoder_landmark"] = "max";
  EXPECT_TRUE(contains(load_error(j), "unknown chunk_encoder_landmark 'max'")) << load_error(j);
  j["chunk_encoder_landmark"] = "mean";
  j["chunk_encoder_layers"] = 0;
  EXPECT_TRUE(contains(load_error(j), "chunk_encoder_landmark 'mean' needs a chunk encoder")) << load_error(j);
}

TEST(ModelConfig, BadFileNamesThePath) {
  auto path = std::filesystem::temp_directory_path() / ("hsa_bad_config_" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream(path) << "{\"hidden_size\": 3,";
  }
  try {
    ModelConfig::from_file(path.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), path.string())) << e.what();
    EXPECT_TRUE(contains(e.what(), "invalid JSON")) << e.what();
  }
  std::filesystem::remove(path);
  EXPECT_THROW(ModelConfig::from_file("/nonexistent/hsa/config.json"), Error);
}

TEST(ParamSpec, MicroParameterCountMatchesHandCount) {
  ModelConfig c = ModelConfig::from_file(config_path("micro.json"));
  // dm 32, HQ 2, H 1, D 16, V 260, F 64, E 2, Fe 32, NS 1, dr 16; layers: 0 swa dense, 1 hsa moe, 2 swa moe.
  const int64_t embed = 260 * 32;
  const int64_t attn = 32 + 32 * 32 + 16 * 32 + 16 * 32 + 32 * 32 + 16 + 16;  // norm, q, k, v, o, q/k norms
  const int64_t hsa = 32 + 32 * 32 + 32 * 32 + 16 * 32 + 16;                  // norm, q, o, retrieval, q norm
  const int64_t dense = 32 + 3 * 64 * 32;                                      // norm + SwiGLU
  const int64_t moe = 32 + 2 * 32 + 3 * 2 * 32 * 32 + 3 * 1 * 32 * 32;         // norm, router, experts, shared
  const int64_t memory = 32 + 16 * 32 + 16 * 32 + 16 * 32 + 16;                // norm, k, v, landmark, k norm
  const int64_t final_norm = 32;                                               // lm_head tied
  const int64_t total = embed + 3 * attn + hsa + dense + 2 * moe + memory + final_norm;
  EXPECT_EQ(total, 46752);
  auto specs = model_param_specs(c);
  EXPECT_EQ(count_parameters(specs), total);
  EXPECT_EQ(active_parameters_per_token(c), total - 2 * (1 * 3 * 32 * 32));
  EXPECT_DOUBLE_EQ(state_bytes_per_token(c, DType::f32), (2 * 1 * 16 + 16.0 / 8) * 4);
  EXPECT_DOUBLE_EQ(state_bytes_per_token(c, DType::bf16), (2 * 1 * 16 + 16.0 / 8) * 2);

  std::set<std::string> names;
  for (const auto& s : specs) EXPECT_TRUE(names.insert(s.name).second) << "duplicate " << s.name;
  EXPECT_TRUE(names.count("layers.1.hsa.retrieval_proj.weight"));
  EXPECT_TRUE(names.count("layers.0.ffn.gate_proj.weight"));
  EXPECT_TRUE(names.count("layers.2.moe.shared_down"));
  EXPECT_FALSE(names.count("layers.2.hsa.q_proj.weight"));
  EXPECT_FALSE(names.count("lm_head.weight"));
  EXPECT_TRUE(names.count("memory.landmark_proj.weight"));
}

TEST(ParamSpec, ShapesAndInitialisers) {
  ModelConfig c = ModelConfig::from_file(config_path("tiny.json"));
  c.tie_word_embeddings = false;
  c.hsa_qk_norm = false;
  auto specs = model_param_specs(c);
  std::map<std::string, ParamSpec> by;
  for (const auto& s : specs) by[s.name] = s;
  EXPECT_EQ(by.at("lm_head.weight").shape, (Shape{260, 128}));
  EXPECT_EQ(by.at("layers.2.moe.w_down").shape, (Shape{4, 128, 128}));
  EXPECT_EQ(by.at("layers.4.hsa.retrieval_proj.weight").shape, (Shape{64, 128}));
  EXPECT_EQ(by.at("layers.0.attn.o_proj.weight").shape, (Shape{128, 128}));
  EXPECT_EQ(by.at("layers.0.attn.k_proj.weight").shape, (Shape{64, 128}));
  EXPECT_FALSE(by.count("memory.k_norm.weight"));
  EXPECT_FALSE(by.count("layers.2.hsa.q_norm.weight"));
  EXPECT_EQ(by.at("final_norm.weight").init, ParamSpec::Init::ones);
  EXPECT_DOUBLE_EQ(by.at("layers.0.attn.q_proj.weight").stddev, 0.02);
  EXPECT_DOUBLE_EQ(by.at("layers.0.attn.o_proj.weight").stddev, 0.02 / std::sqrt(12.0));
  EXPECT_DOUBLE_EQ(by.at("layers.3.moe.shared_down").stddev, 0.02 / std::sqrt(12.0));
}

TEST(ParamSpec, ChunkEncoderComesLastAndLeavesTheRestUnchanged) {
  ModelConfig base = ModelConfig::from_file(config_path("micro.json"));
  ModelConfig c = base;
  c.chunk_encoder_layers = 2;
  auto specs = model_param_specs(c), base_specs = model_param_specs(base);
  // dm 32, HQ 2, D 16, F 64, qk_norm on: per block norm, q, k, v, o, q/k norms, ffn norm, SwiGLU.
  const int64_t block = 32 + 4 * 32 * 32 + 16 + 16 + 32 + 3 * 64 * 32;
  EXPECT_EQ(count_parameters(specs), count_parameters(base_specs) + 32 + 32 + 2 * block);  // + cls, lmk_norm
  for (size_t i = 0; i < base_specs.size(); ++i) EXPECT_EQ(specs[i].name, base_specs[i].name);
  std::map<std::string, ParamSpec> by;
  for (const auto& s : specs) by[s.name] = s;
  EXPECT_EQ(by.at("memory.cls").shape, (Shape{32}));
  EXPECT_EQ(by.at("memory.lmk_norm.weight").init, ParamSpec::Init::ones);
  EXPECT_EQ(by.at("memory.encoder.1.attn.k_proj.weight").shape, (Shape{32, 32}));  // all HQ heads, no GQA
  EXPECT_EQ(by.at("memory.encoder.0.ffn.down_proj.weight").shape, (Shape{32, 64}));
  EXPECT_DOUBLE_EQ(by.at("memory.encoder.0.attn.o_proj.weight").stddev, 0.02 / 2.0);
  EXPECT_FALSE(by.count("memory.encoder.2.attn_norm.weight"));
  // Same seed: every parameter the mean-pooling model has starts with the same values.
  auto a = init_parameters(c, 7), b = init_parameters(base, 7);
  for (const auto& [name, t] : b) EXPECT_EQ(a.at(name).to_vector(), t.to_vector()) << name;
}

TEST(ParamSpec, InitIsDeterministic) {
  ModelConfig c = ModelConfig::from_file(config_path("micro.json"));
  auto a = init_parameters(c, 7, DType::f32);
  auto b = init_parameters(c, 7, DType::f32);
  auto other = init_parameters(c, 8, DType::f32);
  ASSERT_EQ(a.size(), model_param_specs(c).size());
  EXPECT_EQ(a.at("embed.weight").to_vector(), b.at("embed.weight").to_vector());
  EXPECT_NE(a.at("embed.weight").to_vector(), other.at("embed.weight").to_vector());
  // Distinct parameters of one shape get distinct values.
  EXPECT_NE(a.at("memory.k_proj.weight").to_vector(), a.at("memory.v_proj.weight").to_vector());
  for (double v : a.at("final_norm.weight").to_vector()) EXPECT_EQ(v, 1.0);
  auto w = a.at("layers.0.attn.q_proj.weight").to_vector();
  double ss = 0;
  for (double v : w) ss += v * v;
  EXPECT_NEAR(std::sqrt(ss / w.size()), 0.02, 0.002);
  EXPECT_EQ(init_parameters(c, 7, DType::bf16).at("embed.weight").dtype(), DType::bf16);
}

#include "common/temp_dir.h"
#include "model/checkpoint.h"
#include "model/param_spec.h"
#include "model/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace hsa;
using hsa::testing::TempDir;
namespace fs = std::filesystem;

namespace {

ModelConfig micro() {
  return ModelConfig::from_file(
      (fs::path(__FILE__).parent_path().parent_path().parent_path() / "configs" / "micro.json").string());
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(Checkpoint, RoundTrip) {
  TempDir tmp;
  const std::string dir = (tmp.path / "nested" / "ckpt").string();
  for (DType dtype : {DType::f32, DType::bf16}) {
    ModelConfig cfg = micro();
    cfg.rope_theta = 123456.0;
    auto params = init_parameters(cfg, 42, dtype);
    save_checkpoint(dir, cfg, params, {{"step", "17"}});
    EXPECT_TRUE(fs::exists(fs::path(dir) / "config.json"));
    EXPECT_TRUE(fs::exists(fs::path(dir) / "model.safetensors"));
    Checkpoint ck = load_checkpoint(dir);
    EXPECT_EQ(ck.config.to_json(), cfg.to_json());
    EXPECT_EQ(ck.metadata.at("step"), "17");
    ASSERT_EQ(ck.params.size(), params.size());
    for (const auto& [name, t] : params) {
      const Tensor& got = ck.params.at(name);
      EXPECT_EQ(got.dtype(), dtype) << name;
      EXPECT_EQ(got.shape(), t.shape()) << name;
      EXPECT_EQ(got.to_vector(), t.to_vector()) << name;
    }
  }
}

TEST(Checkpoint, MismatchedCheckpointListsEveryBadTensor) {
  TempDir tmp;
  const std::string dir = tmp.path.string();
  ModelConfig cfg = micro();
  auto params = init_parameters(cfg, 1, DType::f32);
  save_checkpoint(dir, cfg, params);
  // Rewrite the tensors behind the checkpoint's back.
  params.erase("memory.landmark_proj.weight");
  params.erase("layers.1.hsa.q_norm.weight");
  params["layers.0.attn.q_proj.weight"] = Tensor::zeros({31, 32});
  params["final_norm.weight"] = Tensor::zeros({32}, DType::bf16);
  params["lm_head.weight"] = Tensor::zeros({260, 32});  // tied in this config
  save_safetensors((fs::path(dir) / "model.safetensors").string(), params);
  try {
    load_checkpoint(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_TRUE(contains(msg, "model.safetensors")) << msg;
    EXPECT_TRUE(contains(msg, "5 problems")) << msg;
    EXPECT_TRUE(contains(msg, "missing tensor 'memory.landmark_proj.weight' [16, 32]")) << msg;
    EXPECT_TRUE(contains(msg, "missing tensor 'layers.1.hsa.q_norm.weight' [16]")) << msg;
    EXPECT_TRUE(contains(msg, "tensor 'layers.0.attn.q_proj.weight' has shape [31, 32], expected [32, 32]")) << msg;
    EXPECT_TRUE(contains(msg, "tensor 'final_norm.weight' has dtype bf16, expected f32")) << msg;
    EXPECT_TRUE(contains(msg, "unexpected tensor 'lm_head.weight'")) << msg;
  }
  // Saving refuses the same broken set, so a bad checkpoint is never written.
  try {
    save_checkpoint((tmp.path / "other").string(), cfg, params);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "missing tensor 'memory.landmark_proj.weight'")) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.path / "other" / "config.json"));
}

TEST(Checkpoint, BadConfigOrMissingDirectory) {
  TempDir tmp;
  EXPECT_THROW(load_checkpoint((tmp.path / "nope").string()), Error);
  ModelConfig cfg = micro();
  save_checkpoint(tmp.path.string(), cfg, init_parameters(cfg, 1));
  auto j = cfg.to_json();
  j["chunk_sise"] = 8;
  std::ofstream(tmp.path / "config.json") << j.dump();
  try {
    load_checkpoint(tmp.path.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "did you mean 'chunk_size'")) << e.what();
    EXPECT_TRUE(contains(e.what(), "config.json")) << e.what();
  }
}

TEST(Checkpoint, ExportToBf16RoundsEveryWeightAndKeepsConfigAndMetadata) {
  TempDir tmp;
  const std::string from = (tmp.path / "f32").string(), to = (tmp.path / "bf16").string();
  ModelConfig cfg = micro();
  auto params = init_parameters(cfg, 7, DType::f32);
  save_checkpoint(from, cfg, params, {{"step", "5"}});
  export_checkpoint(from, to, DType::bf16);
  Checkpoint ck = load_checkpoint(to);
  EXPECT_EQ(ck.config.to_json(), cfg.to_json());
  EXPECT_EQ(ck.metadata.at("step"), "5");
  EXPECT_EQ(ck.metadata.at("exported_from_dtype"), "f32");
  ASSERT_EQ(ck.params.size(), params.size());
  for (const auto& [name, t] : params) {
    const Tensor& got = ck.params.at(name);
    ASSERT_EQ(got.dtype(), DType::bf16) << name;
    EXPECT_EQ(got.to_vector(), t.to(DType::bf16).to_vector()) << name;
  }
  EXPECT_THROW(export_checkpoint(from, from, DType::bf16), Error);  // would rewrite the file it maps
  EXPECT_THROW(export_checkpoint(from, to, DType::i32), Error);
}

// Sharded checkpoints: shards under the limit, bit-identical tensors, and a damaged index or shard set refused
// with the file named.
#include "common/temp_dir.h"
#include "model/checkpoint.h"
#include "model/param_spec.h"
#include "model/sharded_safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <nlohmann/json.hpp>

using namespace hsa;
using hsa::testing::TempDir;
namespace fs = std::filesystem;

namespace {

ModelConfig micro() {
  return ModelConfig::from_file(
      (fs::path(__FILE__).parent_path().parent_path().parent_path() / "configs" / "micro.json").string());
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

nlohmann::json read_index(const fs::path& dir) {
  std::ifstream in(dir / kWeightsIndexFile);
  return nlohmann::json::parse(in);
}

// Every file in `dir` is config.json, the index or a shard it names: no stale shard is left behind.
void expect_only_indexed_files(const fs::path& dir) {
  std::set<std::string> allowed{std::string("config.json"), std::string(kWeightsIndexFile)};
  const nlohmann::json index = read_index(dir);
  for (const auto& [tensor, shard] : index.at("weight_map").items()) allowed.insert(shard.get<std::string>());
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_TRUE(allowed.count(entry.path().filename().string())) << entry.path();
}

void write_index(const fs::path& dir, const nlohmann::json& index) { std::ofstream(dir / kWeightsIndexFile) << index.dump(); }

constexpr uint64_t kLimit = 20 << 10;  // micro's bf16 weights are tens of KiB, its largest tensor 16.25 KiB

}  // namespace

TEST(ShardedSafetensors, ExportShardedLoadsBitIdenticalUnderTheLimit) {
  TempDir tmp;
  const fs::path from = tmp.path / "f32", whole = tmp.path / "whole", sharded = tmp.path / "sharded";
  ModelConfig cfg = micro();
  auto params = init_parameters(cfg, 3, DType::f32);
  save_checkpoint(from.string(), cfg, params, {{"step", "9"}});
  export_checkpoint(from.string(), whole.string(), DType::bf16);
  export_checkpoint(from.string(), sharded.string(), DType::bf16, kLimit);
  EXPECT_FALSE(fs::exists(sharded / kWeightsFile));

  const nlohmann::json index = read_index(sharded);
  std::set<std::string> shard_files;
  uint64_t data_bytes = 0;
  for (const auto& [tensor, shard] : index.at("weight_map").items()) shard_files.insert(shard.get<std::string>());
  ASSERT_GT(shard_files.size(), 2u);
  size_t i = 0;
  for (const std::string& shard : shard_files) {
    EXPECT_EQ(shard, fmt::format("model-{:05d}-of-{:05d}.safetensors", ++i, shard_files.size()));
    EXPECT_LE(fs::file_size(sharded / shard), kLimit) << shard;
  }

  Checkpoint a = load_checkpoint(whole.string()), b = load_checkpoint(sharded.string());
  EXPECT_EQ(b.metadata, a.metadata);
  ASSERT_EQ(b.params.size(), a.params.size());
  ASSERT_EQ(index.at("weight_map").size(), a.params.size());
  for (const auto& [name, t] : a.params) {
    const Tensor& got = b.params.at(name);
    ASSERT_EQ(got.dtype(), t.dtype()) << name;
    ASSERT_EQ(got.shape(), t.shape()) << name;
    EXPECT_EQ(std::memcmp(got.raw_data(), t.raw_data(), t.nbytes()), 0) << name;
    data_bytes += t.nbytes();
  }
  EXPECT_EQ(index.at("metadata").at("total_size").get<uint64_t>(), data_bytes);
}

TEST(ShardedSafetensors, TensorLargerThanTheLimitIsNamed) {
  TempDir tmp;
  ModelConfig cfg = micro();
  const std::string msg =
      message_of([&] { save_checkpoint(tmp.path.string(), cfg, init_parameters(cfg, 1), {}, "", 1024); });
  EXPECT_TRUE(contains(msg, "embed.weight")) << msg;
  EXPECT_TRUE(contains(msg, "1024")) << msg;
  EXPECT_FALSE(fs::exists(tmp.path / kWeightsIndexFile));
}

TEST(ShardedSafetensors, ResavingReplacesTheOtherLayout) {
  TempDir tmp;
  ModelConfig cfg = micro();
  auto params = init_parameters(cfg, 1, DType::bf16);
  save_checkpoint(tmp.path.string(), cfg, params);
  save_checkpoint(tmp.path.string(), cfg, params, {}, "", kLimit);
  EXPECT_FALSE(fs::exists(tmp.path / kWeightsFile));
  expect_only_indexed_files(tmp.path);
  const auto shards = std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator());
  save_checkpoint(tmp.path.string(), cfg, params, {}, "", 3 * kLimit);  // fewer shards: the old ones go
  expect_only_indexed_files(tmp.path);
  EXPECT_LT(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator()), shards);
  save_checkpoint(tmp.path.string(), cfg, params);
  EXPECT_FALSE(fs::exists(tmp.path / kWeightsIndexFile));
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator()), 2);  // config + weights
  EXPECT_EQ(load_checkpoint(tmp.path.string()).params.size(), params.size());
}

TEST(ShardedSafetensors, DamagedShardSetsAreRefusedNamingTheFile) {
  TempDir tmp;
  ModelConfig cfg = micro();
  const fs::path dir = tmp.path / "ck";
  save_checkpoint(dir.string(), cfg, init_parameters(cfg, 1, DType::bf16), {}, "", kLimit);
  const nlohmann::json good = read_index(dir);
  const std::string index_path = (dir / kWeightsIndexFile).string();
  const std::string first = good["weight_map"].begin().value(), last = (--good["weight_map"].end()).value();
  ASSERT_NE(first, last);
  auto load = [&] { return message_of([&] { load_checkpoint(dir.string()); }); };

  std::ofstream(index_path) << "{\"weight_map\": {";  // corrupt JSON
  std::string msg = load();
  EXPECT_TRUE(contains(msg, index_path) && contains(msg, "JSON")) << msg;

  write_index(dir, {{"metadata", {}}});  // no weight_map
  msg = load();
  EXPECT_TRUE(contains(msg, index_path) && contains(msg, "weight_map")) << msg;

  nlohmann::json escape = good;
  escape["weight_map"]["embed.weight"] = "../elsewhere.safetensors";
  write_index(dir, escape);
  msg = load();
  EXPECT_TRUE(contains(msg, "embed.weight") && contains(msg, "elsewhere")) << msg;

  nlohmann::json unknown = good;  // the index moves a tensor to another shard than the one holding it
  const std::string moved = good["weight_map"].begin().key();
  unknown["weight_map"][moved] = last;
  write_index(dir, unknown);
  msg = load();
  EXPECT_TRUE(contains(msg, moved) && (contains(msg, first) || contains(msg, last))) << msg;

  nlohmann::json missing_tensor = good;  // the index names a tensor no shard holds
  missing_tensor["weight_map"]["ghost.weight"] = first;
  write_index(dir, missing_tensor);
  msg = load();
  EXPECT_TRUE(contains(msg, "ghost.weight") && contains(msg, first)) << msg;

  write_index(dir, good);
  EXPECT_NO_THROW(load_checkpoint(dir.string()));

  // Duplicated across shards: the last shard also carries a tensor of the first.
  {
    SafetensorsFile a = load_safetensors((dir / first).string());
    SafetensorsFile b = load_safetensors((dir / last).string());
    auto tensors = b.tensors;
    const std::string dup = a.tensors.begin()->first;
    tensors[dup] = a.tensors.begin()->second.clone();
    save_safetensors((dir / last).string() + ".dup", tensors);
    fs::rename((dir / last).string() + ".dup", dir / last);
    msg = load();
    EXPECT_TRUE(contains(msg, dup) && contains(msg, first) && contains(msg, last)) << msg;
  }

  fs::remove(dir / last);  // missing shard
  msg = load();
  EXPECT_TRUE(contains(msg, (dir / last).string()) && contains(msg, "missing")) << msg;
}

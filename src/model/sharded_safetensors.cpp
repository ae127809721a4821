#include "model/sharded_safetensors.h"

#include "util/file_util.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

namespace hsa {

namespace fs = std::filesystem;

namespace {

std::string shard_name(size_t index, size_t count) {
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", index + 1, count);
}

// A shard name from an index must be a plain file name: an index may not point outside its directory.
bool plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos;
}

// The shard names of the index in `dir`, or none when there is no readable index (used only to clean up).
std::set<std::string> indexed_shards(const std::string& dir) {
  std::set<std::string> names;
  try {
    auto index = nlohmann::json::parse(read_file((fs::path(dir) / kWeightsIndexFile).string()));
    for (const auto& [tensor, shard] : index.at("weight_map").items())
      if (shard.is_string() && plain_file_name(shard.get<std::string>())) names.insert(shard.get<std::string>());
  } catch (const std::exception&) {
  }
  return names;
}

void remove_if_present(const fs::path& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) fail("save_model_weights: cannot remove stale '{}': {}", path.string(), ec.message());
}

// Greedy packing in name order: a shard is closed when the next tensor would take its file over the limit.
std::vector<std::map<std::string, Tensor>> pack_shards(const std::string& dir,
                                                       const std::map<std::string, Tensor>& tensors,
                                                       const std::map<std::string, std::string>& metadata,
                                                       uint64_t max_bytes) {
  std::vector<std::map<std::string, Tensor>> shards(1);
  for (const auto& [name, t] : tensors) {
    shards.back().emplace(name, t);
    if (safetensors_file_bytes(shards.back(), metadata) <= max_bytes) continue;
    shards.back().erase(name);
    const std::map<std::string, Tensor> alone{{name, t}};
    const uint64_t alone_bytes = safetensors_file_bytes(alone, metadata);
    if (alone_bytes > max_bytes)
      fail("save_model_weights {}: tensor '{}' {} {} needs a {}-byte shard, over the shard limit of {} bytes", dir,
           name, dtype_name(t.dtype()), shape_str(t.shape()), alone_bytes, max_bytes);
    shards.push_back(alone);
  }
  if (shards.back().empty()) shards.pop_back();
  return shards;
}

}  // namespace

std::string model_weights_path(const std::string& dir) {
  const fs::path index = fs::path(dir) / kWeightsIndexFile;
  std::error_code ec;
  return (fs::exists(index, ec) ? index : fs::path(dir) / kWeightsFile).string();
}

void save_model_weights(const std::string& dir, const std::map<std::string, Tensor>& tensors,
                        const std::map<std::string, std::string>& metadata, uint64_t max_shard_bytes) {
  const fs::path root(dir);
  const std::set<std::string> old_shards = indexed_shards(dir);
  if (max_shard_bytes == 0) {
    save_safetensors((root / kWeightsFile).string(), tensors, metadata);
    // The index would take precedence over the new file: it goes, then the shards it named.
    remove_if_present(root / kWeightsIndexFile);
    for (const std::string& s : old_shards) remove_if_present(root / s);
    return;
  }
  const auto shards = pack_shards(dir, tensors, metadata, max_shard_bytes);
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total_size = 0;
  std::set<std::string> new_shards;
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string name = shard_name(i, shards.size());
    save_safetensors((root / name).string(), shards[i], metadata);
    new_shards.insert(name);
    for (const auto& [tensor, t] : shards[i]) {
      weight_map[tensor] = name;
      total_size += t.nbytes();
    }
  }
  const nlohmann::json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  write_file_atomic((root / kWeightsIndexFile).string(), index.dump(2) + "\n");
  remove_if_present(root / kWeightsFile);
  for (const std::string& s : old_shards)
    if (!new_shards.count(s)) remove_if_present(root / s);
}

SafetensorsFile load_model_weights(const std::string& dir) {
  const fs::path root(dir);
  const std::string index_path = (root / kWeightsIndexFile).string();
  std::error_code ec;
  if (!fs::exists(index_path, ec)) return load_safetensors((root / kWeightsFile).string());

  nlohmann::json index;
  try {
    index = nlohmann::json::parse(read_regular_file(index_path, "safetensors index"));
  } catch (const nlohmann::json::exception& e) {
    fail("safetensors index {}: not valid JSON: {}", index_path, e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    fail("safetensors index {}: expected an object with a \"weight_map\" object", index_path);
  // Shard -> the tensors the index puts there.
  std::map<std::string, std::set<std::string>> expected;
  for (const auto& [tensor, shard] : index["weight_map"].items()) {
    if (!shard.is_string() || !plain_file_name(shard.get<std::string>()))
      fail("safetensors index {}: tensor '{}' maps to {}, expected a file name in the same directory", index_path,
           tensor, shard.dump());
    expected[shard.get<std::string>()].insert(tensor);
  }
  if (expected.empty()) fail("safetensors index {}: the weight_map is empty", index_path);

  SafetensorsFile out;
  std::map<std::string, std::string> found_in;  // tensor -> shard it was loaded from
  for (const auto& [shard, names] : expected) {
    const std::string shard_path = (root / shard).string();
    if (!fs::exists(shard_path, ec))
      fail("safetensors index {}: shard {} is missing ({} tensors, e.g. '{}')", index_path, shard_path, names.size(),
           *names.begin());
    // One shard at a time: each is memory-mapped, so the model is never held twice.
    SafetensorsFile file = load_safetensors(shard_path);
    for (auto& [tensor, t] : file.tensors) {
      auto seen = found_in.find(tensor);
      if (seen != found_in.end())
        fail("safetensors shard {}: tensor '{}' is also in shard {}", shard_path, tensor, seen->second);
      if (!names.count(tensor))
        fail("safetensors shard {}: tensor '{}' is not mapped to this shard by the index {}", shard_path, tensor,
             index_path);
      found_in[tensor] = shard_path;
      out.tensors[tensor] = std::move(t);
    }
    for (const std::string& tensor : names)
      if (!file.tensors.count(tensor))
        fail("safetensors shard {}: lacks tensor '{}', which the index {} maps to it", shard_path, tensor, index_path);
    for (auto& [key, value] : file.metadata) out.metadata.emplace(key, value);
  }
  return out;
}

uint64_t model_weights_bytes(const std::string& dir) {
  const fs::path root(dir);
  const std::string entry = model_weights_path(dir);
  if (fs::path(entry).filename() == kWeightsFile) return fs::file_size(entry);
  uint64_t bytes = fs::file_size(entry);
  for (const std::string& s : indexed_shards(dir)) bytes += fs::file_size(root / s);
  return bytes;
}

}  // namespace hsa

// A model's weights in a checkpoint directory: one model.safetensors, or shards model-00001-of-0000N.safetensors
// named by model.safetensors.index.json ({"metadata": {"total_size": data bytes}, "weight_map": {tensor: shard}},
// the layout Hugging Face uses), so a model can be shipped in files under a size limit.
#pragma once
#include "model/safetensors.h"

#include <cstdint>
#include <string>

namespace hsa {

inline constexpr const char* kWeightsFile = "model.safetensors";
inline constexpr const char* kWeightsIndexFile = "model.safetensors.index.json";

// max_shard_bytes == 0: one model.safetensors. Otherwise shards whose files are each at most max_shard_bytes
// (a tensor too large for any shard is an error naming it), every shard carrying `metadata`; the shards are
// written first and the index last, each atomically, so an index never names a missing shard. The other
// layout's entry file (a stale model.safetensors or index) is removed after, as are stale shards of an
// earlier index that the new one does not name.
void save_model_weights(const std::string& dir, const std::map<std::string, Tensor>& tensors,
                        const std::map<std::string, std::string>& metadata, uint64_t max_shard_bytes = 0);

// The index when `dir` has one, else model.safetensors: the file to name in messages and to measure.
std::string model_weights_path(const std::string& dir);

// Loads the shards of the index when there is one (each shard memory-mapped and strictly checked as by
// load_safetensors; every tensor named exactly once, in the shard the index says), else model.safetensors.
// Any problem is an hsa::Error naming the index or shard file. The metadata is the shards' (merged).
SafetensorsFile load_model_weights(const std::string& dir);

// Bytes on disk of the weights in `dir`: the single file, or every shard plus the index.
uint64_t model_weights_bytes(const std::string& dir);

}  // namespace hsa

// A checkpoint is a directory: config.json (ModelConfig) + model.safetensors (every parameter, one dtype), or
// instead its shards and model.safetensors.index.json (see model/sharded_safetensors.h).
#pragma once
#include "model/config.h"

#include <hsa/tensor.h>

#include <cstdint>
#include <map>
#include <string>

namespace hsa {

// Creates `dir` when needed; checks the parameters against the config's layout first (so a broken
// checkpoint is never written); each file is written atomically. max_shard_bytes > 0 writes the weights as
// shards of at most that many bytes plus their index instead of one model.safetensors.
void save_checkpoint(const std::string& dir, const ModelConfig& config, const std::map<std::string, Tensor>& params,
                     const std::map<std::string, std::string>& metadata = {}, uint64_t max_shard_bytes = 0);

struct Checkpoint {
  ModelConfig config;
  std::map<std::string, Tensor> params;  // views of the memory-mapped model.safetensors (or shards)
  std::map<std::string, std::string> metadata;
};
// Validates the config, then checks the tensors against model_param_specs(config) with the dtype of the
// stored tensors (that of embed.weight); any mismatch lists every bad tensor.
Checkpoint load_checkpoint(const std::string& dir);

// Writes the checkpoint at `from` to `to` with every parameter in `dtype` (f32 or bf16; bf16 rounds to nearest
// even), keeping its config and metadata and recording the source dtype. `to` must differ from `from`: the source
// is memory-mapped while it is read. For shipping a model at half the size (bf16 weights load on any device and
// convert to the compute dtype there). max_shard_bytes as for save_checkpoint.
void export_checkpoint(const std::string& from, const std::string& to, DType dtype, uint64_t max_shard_bytes = 0);

}  // namespace hsa

// A checkpoint is a directory: config.json (ModelConfig) + model.safetensors (every parameter, one dtype) or
// its shards and model.safetensors.index.json (model/sharded_safetensors.h), plus
// the tokenizer file beside config.json when the config names one (its `tokenizer` is not "bytes").
#pragma once
#include "model/config.h"

#include <hsa/tensor.h>

#include <cstdint>
#include <map>
#include <string>

namespace hsa {

// Creates `dir` when needed; checks the parameters against the config's layout first (so a broken
// checkpoint is never written); each file is written atomically. When the config names a tokenizer file,
// `tokenizer_file` is where that file is now: it is copied into `dir` under the config's name (an error
// when it is not given or missing, so no checkpoint lacks its tokenizer). max_shard_bytes > 0 writes the weights
// as shards of at most that many bytes plus their index instead of one model.safetensors.
void save_checkpoint(const std::string& dir, const ModelConfig& config, const std::map<std::string, Tensor>& params,
                     const std::map<std::string, std::string>& metadata = {},
                     const std::string& tokenizer_file = "", uint64_t max_shard_bytes = 0);

// The tokenizer file of the checkpoint (or config) in `dir`: dir/config.tokenizer, or "" for "bytes".
std::string tokenizer_file_in(const std::string& dir, const ModelConfig& config);

struct Checkpoint {
  ModelConfig config;
  std::map<std::string, Tensor> params;  // views of the memory-mapped model.safetensors (or shards)
  std::map<std::string, std::string> metadata;
};
// Validates the config, then checks the tensors against model_param_specs(config) with the dtype of the
// stored tensors (that of embed.weight); any mismatch lists every bad tensor.
Checkpoint load_checkpoint(const std::string& dir);

// Writes the checkpoint at `from` to `to` with every parameter in `dtype` (f32 or bf16; bf16 rounds to nearest
// even), keeping its config, tokenizer file and metadata and recording the source dtype. `to` must differ from `from`: the source
// is memory-mapped while it is read. For shipping a model at half the size (bf16 weights load on any device and
// convert to the compute dtype there). max_shard_bytes as for save_checkpoint.
void export_checkpoint(const std::string& from, const std::string& to, DType dtype, uint64_t max_shard_bytes = 0);

}  // namespace hsa

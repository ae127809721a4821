#include "model/checkpoint.h"

#include "model/param_spec.h"
#include "model/safetensors.h"
#include "model/sharded_safetensors.h"
#include "model/tensor_map.h"

#include "util/file_util.h"

#include <hsa/error.h>

#include <filesystem>

namespace hsa {

namespace fs = std::filesystem;

namespace {
// The dtype a parameter set is stored in: embed.weight's (always present), else any tensor's.
DType params_dtype(const std::map<std::string, Tensor>& params) {
  auto it = params.find("embed.weight");
  if (it != params.end()) return it->second.dtype();
  return params.empty() ? DType::f32 : params.begin()->second.dtype();
}
}  // namespace

std::string tokenizer_file_in(const std::string& dir, const ModelConfig& config) {
  if (config.tokenizer.empty() || config.tokenizer == "bytes") return "";
  return (fs::path(dir) / config.tokenizer).string();
}

void save_checkpoint(const std::string& dir, const ModelConfig& config, const std::map<std::string, Tensor>& params,
                     const std::map<std::string, std::string>& metadata, const std::string& tokenizer_file,
                     uint64_t max_shard_bytes) {
  const std::string tokenizer_target = tokenizer_file_in(dir, config);
  HSA_CHECK(tokenizer_target.empty() || (!tokenizer_file.empty() && fs::is_regular_file(tokenizer_file)),
            "save_checkpoint {}: the config names tokenizer '{}' but its file {} is not there to copy", dir,
            config.tokenizer, tokenizer_file.empty() ? "(none given)" : "'" + tokenizer_file + "'");
  try {
    check_tensors_match(params, model_param_specs(config), params_dtype(params));
  } catch (const Error& e) {
    fail("save_checkpoint {}: {}", dir, e.what());
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("save_checkpoint: cannot create directory '{}': {}", dir, ec.message());
  // Tensors first, config last: a directory with a config.json has its weights complete.
  save_model_weights(dir, params, metadata, max_shard_bytes);
  std::error_code same;
  if (!tokenizer_target.empty() && !(fs::exists(tokenizer_target) && fs::equivalent(tokenizer_file, tokenizer_target, same)))
    write_file_atomic(tokenizer_target, read_file(tokenizer_file));
  config.save((fs::path(dir) / "config.json").string());
}

Checkpoint load_checkpoint(const std::string& dir) {
  HSA_CHECK(fs::is_directory(dir), "load_checkpoint: '{}' is not a directory", dir);
  Checkpoint ckpt;
  ckpt.config = ModelConfig::from_file((fs::path(dir) / "config.json").string());
  const std::string weights = model_weights_path(dir);
  SafetensorsFile file = load_model_weights(dir);
  try {
    check_tensors_match(file.tensors, model_param_specs(ckpt.config), params_dtype(file.tensors));
  } catch (const Error& e) {
    fail("load_checkpoint {}: {}", weights, e.what());
  }
  ckpt.params = std::move(file.tensors);
  ckpt.metadata = std::move(file.metadata);
  return ckpt;
}

void export_checkpoint(const std::string& from, const std::string& to, DType dtype, uint64_t max_shard_bytes) {
  HSA_CHECK(dtype == DType::f32 || dtype == DType::bf16, "export: dtype must be f32 or bf16, got {}",
            dtype_name(dtype));
  std::error_code ec;
  HSA_CHECK(!fs::exists(to) || !fs::equivalent(from, to, ec), "export: the output '{}' is the input checkpoint", to);
  Checkpoint ck = load_checkpoint(from);
  auto metadata = ck.metadata;
  metadata["exported_from_dtype"] = std::string(dtype_name(params_dtype(ck.params)));
  save_checkpoint(to, ck.config, convert(ck.params, Device::cpu, dtype), metadata, tokenizer_file_in(from, ck.config),
                  max_shard_bytes);
}

}  // namespace hsa

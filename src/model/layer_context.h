// What every layer of the model needs to run: the config, the parameters and the layer's name prefix.
#pragma once
#include "model/config.h"
#include "model/tensor_map.h"

#include <string>

namespace hsa {

struct LayerContext {
  const ModelConfig& config;
  const TensorMap& params;
  std::string prefix;  // "layers.3." or "memory."

  const Tensor& param(const std::string& name) const { return need(params, prefix + name); }
  bool has(const std::string& name) const { return params.count(prefix + name) != 0; }
  std::string name(const std::string& suffix) const { return prefix + suffix; }
};

}  // namespace hsa

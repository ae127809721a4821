#include "train/reinit.h"

#include "model/param_spec.h"

#include <hsa/error.h>

#include <algorithm>

namespace hsa {

void check_reinit_patterns(const ModelConfig& config, const std::vector<std::string>& patterns) {
  const std::vector<ParamSpec> specs = model_param_specs(config);
  for (const std::string& pattern : patterns) {
    if (pattern.empty()) fail_argument("train: --reinit needs a non-empty parameter name (or part of one)");
    if (std::none_of(specs.begin(), specs.end(),
                     [&](const ParamSpec& s) { return s.name.find(pattern) != std::string::npos; }))
      fail_argument("train: --reinit '{}' matches no parameter of the model (e.g. retrieval_proj)", pattern);
  }
}

std::vector<std::string> reinitialise_parameters(TensorMap& params, const ModelConfig& config,
                                                 const std::vector<std::string>& patterns, uint64_t seed) {
  if (patterns.empty()) return {};
  check_reinit_patterns(config, patterns);
  const TensorMap fresh = init_parameters(config, seed, DType::f32);
  std::vector<std::string> replaced;
  for (auto& [name, t] : params) {
    if (std::none_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return name.find(p) != std::string::npos; }))
      continue;
    const Tensor& init = fresh.at(name);
    HSA_CHECK(init.shape() == t.shape(), "train: --reinit: {} has shape {} but the config gives {}", name,
              shape_str(t.shape()), shape_str(init.shape()));
    t = init.to(t.dtype()).to(t.device());
    replaced.push_back(name);
  }
  return replaced;  // the map's order: sorted by name
}

}  // namespace hsa

#include "train/init_config.h"

#include "model/param_spec.h"

#include <hsa/error.h>

#include <map>

namespace hsa {

void check_init_config(const ModelConfig& config, const ModelConfig& checkpoint_config, const std::string& dir) {
  std::map<std::string, Shape> wanted;
  for (const ParamSpec& s : model_param_specs(config)) wanted[s.name] = s.shape;
  for (const ParamSpec& s : model_param_specs(checkpoint_config)) {
    auto it = wanted.find(s.name);
    if (it == wanted.end())
      fail_argument("train: --config has no parameter '{}' of the --init checkpoint {} (shape {}); a new config "
                    "may add parameters, not drop them",
                    s.name, dir, shape_str(s.shape));
    if (it->second != s.shape)
      fail_argument("train: parameter '{}' has shape {} in the --init checkpoint {} but {} in --config", s.name,
                    shape_str(s.shape), dir, shape_str(it->second));
  }
}

std::vector<std::string> add_fresh_parameters(TensorMap& params, const ModelConfig& config, uint64_t seed) {
  const Tensor& like = params.at("embed.weight");
  std::vector<std::string> added;
  const std::vector<ParamSpec> specs = model_param_specs(config);
  for (const ParamSpec& s : specs)
    if (!params.count(s.name)) added.push_back(s.name);
  if (added.empty()) return added;
  TensorMap fresh = init_parameters(config, seed, DType::f32);
  for (const std::string& name : added) params[name] = fresh.at(name).to(like.dtype()).to(like.device());
  return added;
}

}  // namespace hsa

// A new stage under a new config: `hsa train --init DIR --config FILE`. The given config replaces the
// checkpoint's (the way to turn on an option that adds parameters, such as hsa_retrieval_norm, for a trained
// model): every parameter both configs have keeps its trained value, parameters only the new config has start
// from their initial value, and the shapes must agree (docs/training-lm.md).
#pragma once
#include "model/config.h"
#include "model/tensor_map.h"

#include <string>
#include <vector>

namespace hsa {

// Throws InvalidArgument (exit 2) when `config` cannot take the parameters of a checkpoint with
// `checkpoint_config`: a parameter of both with different shapes (naming it and both shapes), or one only the
// checkpoint has. `dir` names the checkpoint in the message. The check a run makes before it creates anything.
void check_init_config(const ModelConfig& config, const ModelConfig& checkpoint_config, const std::string& dir);

// Adds to `params` (a checkpoint's, already checked with check_init_config) every parameter of `config` it lacks,
// with its value in init_parameters(config, seed), in the dtype and on the device of `params`' embed.weight.
// Returns the added names, in model_param_specs order.
std::vector<std::string> add_fresh_parameters(TensorMap& params, const ModelConfig& config, uint64_t seed);

}  // namespace hsa

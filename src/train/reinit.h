// Fresh initial values for some parameters of a loaded model (`hsa train --init DIR --reinit NAME`).
//
// Why: a language model trained first can leave its retrieval saturated: the unnormalised retrieval query grows
// until one chunk (the first, a sink) takes the whole softmax over the selected chunks, so every other chunk's
// weight and gradient is ~0 and a later retrieval stage has no signal to learn from (docs/training-lm.md).
// Re-drawing the retrieval query projection keeps what the language model learnt and gives the chunk
// weights back their spread.
#pragma once
#include "model/config.h"
#include "model/tensor_map.h"

#include <string>
#include <vector>

namespace hsa {

// Throws (naming the --reinit flag) when a pattern is empty or matches no parameter of `config`: the check a run
// makes before it creates anything.
void check_reinit_patterns(const ModelConfig& config, const std::vector<std::string>& patterns);

// Replaces every parameter whose name contains one of `patterns` by its value in init_parameters(config, seed),
// in the dtype and on the device of the parameter it replaces. Returns the replaced names (sorted). Throws
// (naming the --reinit flag) when a pattern matches no parameter.
std::vector<std::string> reinitialise_parameters(TensorMap& params, const ModelConfig& config,
                                                 const std::vector<std::string>& patterns, uint64_t seed);

}  // namespace hsa

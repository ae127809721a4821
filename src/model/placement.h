// Where a model runs and in what dtype: what the --device / --dtype options of the inference commands
// (generate, demo, ruler) resolve to, and the model built there from a checkpoint.
#pragma once
#include "model/checkpoint.h"
#include "model/model.h"

#include <string>

namespace hsa {

struct Placement {
  Device device = Device::cpu;
  DType dtype = DType::f32;
  std::string description;  // "cpu" or the GPU's name
};

// device "cpu" | "cuda"; dtype "f32" | "bf16" | "" (f32 on the cpu, bf16 on cuda). Throws when the device
// cannot be used (no GPU, or a build without CUDA).
Placement resolve_placement(const std::string& device, const std::string& dtype);

// The checkpoint's weights converted to the placement (the checkpoint's own tensors when they already match).
Model place_model(const Checkpoint& checkpoint, const Placement& placement);

}  // namespace hsa

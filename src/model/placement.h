// Where a model runs and in what dtype: what the --device / --dtype options of the inference commands
// (generate, demo, ruler) resolve to, and the model built there from a checkpoint.
#pragma once
#include "model/checkpoint.h"
#include "model/memory_tiers.h"
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

// What the user asked of the chunk memory tiers (--memory-budget, --host-budget, --disk-dir); 0 = not given.
struct TierRequest {
  size_t device_budget = 0;
  size_t host_budget = 0;
  std::string disk_dir;
};

// A rough upper bound on the activations of one prefill segment where the model runs (hidden states of a few
// layers, attention and retrieval intermediates, the logits), so a default budget leaves room for them.
size_t activation_bytes_estimate(const ModelConfig& config, DType dtype, int64_t segment);

// The tiers for a run of `positions` positions. A given --memory-budget is used as it is. Without one, the cpu
// keeps the whole memory in RAM (no tiers), and cuda takes as budget what `free_bytes` leaves after the weights,
// one segment's activations, the landmarks and the working set (with 10% spare); the tiers stay off when the
// whole memory fits in that. On cuda the host tier defaults to half the host's available memory.
MemoryTiers choose_memory_tiers(const ModelConfig& config, const Placement& placement, const TierRequest& request,
                                size_t weight_bytes, int64_t segment, int64_t positions, size_t free_bytes);

}  // namespace hsa

// The memory plan of an inference run: what the weights and the chunk memory of a context will hold on the
// device, against what is free there. `hsa generate` refuses a context beyond it and `hsa serve` derives its
// prompt limit from it, through the same function (max_positions), so the two always agree.
#pragma once
#include "model/checkpoint.h"
#include "model/memory_tiers.h"
#include "model/placement.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace hsa {

struct MemoryPlan {
  double weight_bytes = 0;        // every parameter in the placement's dtype
  double bytes_per_position = 0;  // reserved per context position: twice the state per token, since the chunk
                                  // memory grows by doubling and holds up to twice its final size while it grows
  double free_bytes = 0;          // on the device when planned; 0 when unknown (then nothing is refused)
  static constexpr double kUsable = 0.9;  // fraction of the free memory a run may plan to fill
  // With the chunk memory tiered (model/memory_tiers.h) only the landmarks stay in bytes_per_position: the K/V
  // pages stay on the device at page_bytes_per_position until they fill page_cap_bytes (the device budget), and
  // the page cache and staging buffers take working_bytes whatever the context. All 0 without tiers.
  double page_bytes_per_position = 0;
  double page_cap_bytes = 0;
  double working_bytes = 0;

  // The most context positions each of `sessions` concurrent sessions may hold once the weights and
  // `reserved_bytes` (the server's state cache) are placed: 0 when nothing is left, INT64_MAX when the free
  // memory is unknown, or when the model keeps no state per token and the rest fits.
  int64_t max_positions(double reserved_bytes = 0, int sessions = 1) const;
  // Weights plus the chunk memory reserved for `positions` on the device.
  double bytes_for(int64_t positions) const;
};

// The plan for `checkpoint` placed as `placement`, with `free_bytes` free on its device.
MemoryPlan plan_memory(const Checkpoint& checkpoint, const Placement& placement, size_t free_bytes);
// The same with the device's free memory now (free_memory_bytes).
MemoryPlan plan_memory(const Checkpoint& checkpoint, const Placement& placement);
// The plan with the chunk memory laid out in `tiers` (the plain plan when the tiers are off).
MemoryPlan plan_memory(const Checkpoint& checkpoint, const Placement& placement, size_t free_bytes,
                       const MemoryTiers& tiers);

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
// keeps the whole memory in RAM (no tiers), and cuda takes as budget what the usable part of `free_bytes` leaves
// after the weights, one segment's activations, the landmarks and the working set; the tiers stay off when the
// whole memory fits in that. On cuda the host tier defaults to half the host's available memory.
MemoryTiers choose_memory_tiers(const ModelConfig& config, const Placement& placement, const TierRequest& request,
                                size_t weight_bytes, int64_t segment, int64_t positions, size_t free_bytes);

}  // namespace hsa

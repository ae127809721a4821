#include "model/memory_plan.h"

#include "model/param_spec.h"
#include "tensor/device_memory.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hsa {

int64_t MemoryPlan::max_positions(double reserved_bytes, int sessions) const {
  HSA_CHECK(sessions >= 1, "MemoryPlan::max_positions: sessions must be at least 1, got {}", sessions);
  constexpr int64_t unlimited = std::numeric_limits<int64_t>::max();
  if (free_bytes <= 0) return unlimited;
  double left = kUsable * free_bytes - weight_bytes - working_bytes - reserved_bytes;
  if (left <= 0) return 0;
  // Each session's bytes grow at bytes_per_position + page_bytes_per_position until its pages reach the cap,
  // then at bytes_per_position alone.
  left /= double(sessions);
  double positions = unlimited;
  const double rate = bytes_per_position + page_bytes_per_position;
  if (rate > 0) positions = left / rate;
  if (page_bytes_per_position > 0 && page_bytes_per_position * positions > page_cap_bytes)
    positions = bytes_per_position > 0 ? (left - page_cap_bytes) / bytes_per_position : double(unlimited);
  positions = std::floor(positions);
  return positions >= double(unlimited) ? unlimited : static_cast<int64_t>(positions);
}

double MemoryPlan::bytes_for(int64_t positions) const {
  const double p = double(positions);
  return weight_bytes + working_bytes + bytes_per_position * p + std::min(page_bytes_per_position * p, page_cap_bytes);
}

MemoryPlan plan_memory(const Checkpoint& checkpoint, const Placement& placement, size_t free_bytes) {
  MemoryPlan plan;
  for (const auto& [name, t] : checkpoint.params)
    plan.weight_bytes += double(t.numel()) * double(dtype_size(placement.dtype));
  plan.bytes_per_position = 2.0 * state_bytes_per_token(checkpoint.config, placement.dtype);
  plan.free_bytes = double(free_bytes);
  return plan;
}

MemoryPlan plan_memory(const Checkpoint& checkpoint, const Placement& placement) {
  return plan_memory(checkpoint, placement, free_memory_bytes(placement.device));
}

MemoryPlan plan_memory(const Checkpoint& checkpoint, const Placement& placement, size_t free_bytes,
                       const MemoryTiers& tiers) {
  MemoryPlan plan = plan_memory(checkpoint, placement, free_bytes);
  if (!tiers.enabled() || !checkpoint.config.has_memory()) return plan;
  const ModelConfig& c = checkpoint.config;
  const double page = double(page_bytes(c, placement.dtype)), chunk = double(c.chunk_size);
  // The landmarks still grow by doubling; the device tier's pages do not move once written.
  plan.bytes_per_position = 2.0 * double(landmark_bytes(c, placement.dtype)) / chunk;
  plan.page_bytes_per_position = page / chunk;
  plan.page_cap_bytes = double(pages_in(tiers.device_budget, page_bytes(c, placement.dtype))) * page;
  plan.working_bytes = double(tiers.cache_pages + tiers.staging_pages) * page;
  return plan;
}

}  // namespace hsa

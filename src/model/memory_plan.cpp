#include "model/memory_plan.h"

#include "model/param_spec.h"
#include "tensor/device_memory.h"

#include <cmath>
#include <limits>

namespace hsa {

int64_t MemoryPlan::max_positions(double reserved_bytes, int sessions) const {
  HSA_CHECK(sessions >= 1, "MemoryPlan::max_positions: sessions must be at least 1, got {}", sessions);
  constexpr int64_t unlimited = std::numeric_limits<int64_t>::max();
  if (free_bytes <= 0) return unlimited;
  double left = kUsable * free_bytes - weight_bytes - reserved_bytes;
  if (left <= 0) return 0;
  if (bytes_per_position <= 0) return unlimited;
  double positions = std::floor(left / bytes_per_position / double(sessions));
  return positions >= double(unlimited) ? unlimited : static_cast<int64_t>(positions);
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

}  // namespace hsa

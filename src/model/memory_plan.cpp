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

size_t activation_bytes_estimate(const ModelConfig& c, DType dtype, int64_t segment) {
  const double d = static_cast<double>(dtype_size(dtype));
  const double hidden = 32.0 * double(c.hidden_size) * d;  // residual stream, norms, projections alive at once
  const double ffn = 4.0 * double(std::max(c.intermediate_size, c.moe_intermediate_size * (c.num_experts_per_tok +
                                                                                          c.num_shared_experts))) * d;
  const double attention = 8.0 * double((c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim) * d;
  const double retrieval = 16.0 * double(c.num_attention_heads * c.chunk_topk) * 4.0;
  const double logits = 3.0 * double(c.vocab_size) * 4.0;  // f32 logits plus their copies
  return static_cast<size_t>(double(segment) * (hidden + ffn + attention + retrieval + logits));
}

MemoryTiers choose_memory_tiers(const ModelConfig& c, const Placement& place, const TierRequest& r,
                                size_t weight_bytes, int64_t segment, int64_t positions, size_t free_bytes) {
  MemoryTiers t;
  t.disk_dir = r.disk_dir;
  if (place.device == Device::cpu) {
    if (r.host_budget > 0)
      fail_argument("--host-budget is for --device cuda (on the cpu the first tier is RAM: use --memory-budget)");
    if (r.device_budget > 0) t.device_budget = r.device_budget;
    return t;
  }
  const int64_t chunks = c.has_memory() ? positions / c.chunk_size : 0;
  t.host_budget = r.host_budget > 0 ? r.host_budget : free_memory_bytes(Device::cpu) / 2;
  if (r.device_budget > 0) {
    t.device_budget = r.device_budget;
    return t;
  }
  const size_t page = page_bytes(c, place.dtype), working = size_t(t.cache_pages + t.staging_pages) * page;
  const double reserved = double(weight_bytes) + double(activation_bytes_estimate(c, place.dtype, segment)) +
                          2.0 * double(chunks) * double(landmark_bytes(c, place.dtype)) + double(working);
  const double left = MemoryPlan::kUsable * double(free_bytes) - reserved;
  // Without tiers the buffers grow by doubling: up to twice the final size is held while one is copied.
  if (free_bytes == 0 || 2.0 * double(chunks) * double(page) <= left) return MemoryTiers{};  // it all fits
  MemoryTiers tiered = t;
  tiered.device_budget = left > 0 ? static_cast<size_t>(left) : 0;
  return tiered;
}

}  // namespace hsa

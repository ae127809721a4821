#include "model/placement.h"

#include "tensor/device_memory.h"

#include <algorithm>

namespace hsa {

Placement resolve_placement(const std::string& device, const std::string& dtype) {
  Placement p;
  p.device = parse_device(device);
  p.description = describe_device(p.device);
  p.dtype = dtype.empty() ? (p.device == Device::cuda ? DType::bf16 : DType::f32) : parse_dtype(dtype);
  HSA_CHECK(p.dtype == DType::f32 || p.dtype == DType::bf16, "--dtype must be f32 or bf16, got {}", dtype);
  return p;
}

Model place_model(const Checkpoint& checkpoint, const Placement& placement) {
  return Model(checkpoint.config, convert(checkpoint.params, placement.device, placement.dtype));
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
  const double left = 0.9 * double(free_bytes) - reserved;
  // Without tiers the buffers grow by doubling: up to twice the final size is held while one is copied.
  if (free_bytes == 0 || 2.0 * double(chunks) * double(page) <= left) return MemoryTiers{};  // it all fits
  MemoryTiers tiered = t;
  tiered.device_budget = left > 0 ? static_cast<size_t>(left) : 0;
  return tiered;
}

}  // namespace hsa

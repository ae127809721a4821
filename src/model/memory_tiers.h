// Where the chunk memory's K/V pages live during inference (docs/architecture.md "Chunk memory tiers").
// A page is one chunk's keys and values (2 x S x H x D values, batch 1). Pages fill the tiers in chunk order:
// the first ones stay where the model runs (GPU memory on cuda, RAM on the cpu) up to a byte budget, the next
// ones go to pinned host memory (cuda only) up to a second budget, the rest to a file on disk. Landmarks are not
// pages: retrieval reads all of them at every step, so they always stay where the model runs, outside the budget.
#pragma once
#include "model/config.h"

#include <hsa/dtype.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace hsa {

struct MemoryTiers {
  static constexpr size_t unlimited = std::numeric_limits<size_t>::max();
  size_t device_budget = unlimited;  // bytes of K/V pages kept where the model runs
  size_t host_budget = 0;            // bytes of K/V pages in pinned host memory (cuda); 0 on the cpu
  std::string disk_dir;              // the disk tier's file lives in a directory created inside this one; "": none
  // Working set, outside the budgets: pages recently fetched from host or disk, kept where the model runs, and
  // the most pages one attention call gathers (a segment whose tokens select more is split into pieces).
  int64_t cache_pages = 32;
  int64_t staging_pages = 1024;
  bool enabled() const { return device_budget != unlimited; }
};

// Bytes of one page (K and V of one chunk) and of one chunk's landmark.
size_t page_bytes(const ModelConfig& config, DType dtype);
size_t landmark_bytes(const ModelConfig& config, DType dtype);
// Pages that fit in `budget` bytes (unlimited stays unlimited, as int64 max).
int64_t pages_in(size_t budget, size_t page_bytes);

struct TierPlan {
  int64_t chunks = 0;
  int64_t device_pages = 0, host_pages = 0, disk_pages = 0;
  size_t page_bytes = 0, landmark_bytes = 0;
  size_t working_bytes = 0;  // cache + staging buffers where the model runs
  bool fits = true;          // false: pages left over with no tier to hold them (no disk tier)
};

// How `chunks` chunks of the config's memory would be laid out with `tiers`.
TierPlan plan_tiers(const MemoryTiers& tiers, const ModelConfig& config, DType dtype, int64_t chunks);

// One line per tier: "device (cpu RAM): 12 pages, 1.50 MiB" ..., for `hsa generate` and `hsa info`.
// device_name names the first tier ("cpu RAM", "GPU").
std::vector<std::string> describe_plan(const TierPlan& plan, const std::string& device_name);

// A byte count for people: "1.50 MiB".
std::string human_bytes(double bytes);

}  // namespace hsa

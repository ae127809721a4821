#include "model/memory_tiers.h"

#include <fmt/format.h>

#include <algorithm>

namespace hsa {

size_t page_bytes(const ModelConfig& c, DType dtype) {
  return static_cast<size_t>(2 * c.chunk_size * c.num_key_value_heads * c.head_dim) * dtype_size(dtype);
}

size_t landmark_bytes(const ModelConfig& c, DType dtype) {
  return static_cast<size_t>(c.retrieval_dim) * dtype_size(dtype);
}

int64_t pages_in(size_t budget, size_t page_bytes) {
  if (budget == MemoryTiers::unlimited) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(budget / std::max<size_t>(page_bytes, 1));
}

TierPlan plan_tiers(const MemoryTiers& t, const ModelConfig& c, DType dtype, int64_t chunks) {
  TierPlan p;
  p.chunks = chunks;
  p.page_bytes = page_bytes(c, dtype);
  p.landmark_bytes = landmark_bytes(c, dtype);
  p.device_pages = std::min(chunks, pages_in(t.device_budget, p.page_bytes));
  int64_t rest = chunks - p.device_pages;
  p.host_pages = std::min(rest, pages_in(t.host_budget, p.page_bytes));
  rest -= p.host_pages;
  if (t.disk_dir.empty()) {
    p.fits = rest == 0;
  } else {
    p.disk_pages = rest;
  }
  if (t.enabled()) p.working_bytes = static_cast<size_t>(t.cache_pages + t.staging_pages) * p.page_bytes;
  return p;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) bytes /= 1024.0, ++u;
  return u == 0 ? fmt::format("{:.0f} {}", bytes, units[u]) : fmt::format("{:.2f} {}", bytes, units[u]);
}

std::vector<std::string> describe_plan(const TierPlan& p, const std::string& device_name) {
  auto line = [&](const char* tier, int64_t pages) {
    return fmt::format("  {:<22} {:>10} chunks  {:>12}", tier, pages,
                       human_bytes(double(pages) * double(p.page_bytes)));
  };
  std::vector<std::string> out;
  out.push_back(fmt::format("  {:<22} {:>10} chunks  {:>12}  (always resident)", "landmarks (" + device_name + ")",
                            p.chunks, human_bytes(double(p.chunks) * double(p.landmark_bytes))));
  out.push_back(line(("K/V " + device_name).c_str(), p.device_pages));
  if (p.host_pages > 0) out.push_back(line("K/V pinned host", p.host_pages));
  if (p.disk_pages > 0) out.push_back(line("K/V disk", p.disk_pages));
  if (p.working_bytes > 0)
    out.push_back(fmt::format("  {:<22} {:>10}         {:>12}  (page cache + staging, " "{})", "working set", "",
                              human_bytes(double(p.working_bytes)), device_name));
  if (!p.fits)
    out.push_back(fmt::format("  {} chunks fit in no tier (give a disk directory)",
                              p.chunks - p.device_pages - p.host_pages));
  return out;
}

}  // namespace hsa

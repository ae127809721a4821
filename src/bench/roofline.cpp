#include "bench/roofline.h"

#include <algorithm>
#include <vector>

namespace hsa::bench {

namespace {

struct PeakEntry {
  DevicePeak peak;
  std::vector<std::string> contains;  // all of these in the device name
  std::vector<std::string> excludes;  // none of these (variants with other clocks or memory)
};

// Dense bf16 (no sparsity) and HBM bandwidth from NVIDIA's datasheets. The H100 SXM reports itself as
// "NVIDIA H100 80GB HBM3"; the PCIe and NVL boards and the Grace Hopper superchips have other peaks.
const std::vector<PeakEntry>& peak_table() {
  static const std::vector<PeakEntry> table{
      {{"H100 SXM", 989e12, 3.35e12}, {"H100"}, {"PCIe", "NVL", "GH100", "GH200"}},
      {{"H200", 989e12, 4.8e12}, {"H200"}, {"NVL", "GH200"}},
  };
  return table;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

std::optional<DevicePeak> device_peak(const std::string& device_name) {
  for (const PeakEntry& e : peak_table()) {
    const bool all = std::all_of(e.contains.begin(), e.contains.end(), [&](auto& p) { return has(device_name, p); });
    const bool none = std::none_of(e.excludes.begin(), e.excludes.end(), [&](auto& p) { return has(device_name, p); });
    if (all && none) return e.peak;
  }
  return std::nullopt;
}

Floor floor_of(const Work& work, const DevicePeak& peak) {
  const double compute_s = work.flops / peak.flops_per_s, memory_s = work.bytes / peak.bytes_per_s;
  return {std::max(compute_s, memory_s) * 1e3, compute_s >= memory_s};
}

std::optional<double> target_ms(Kernel kernel, int64_t len) {
  constexpr int64_t k64K = 65536, k256K = 262144;
  switch (kernel) {
    case Kernel::hsa_fwd:
      if (len == k64K) return 1.7;
      if (len == k256K) return 7.0;
      break;
    case Kernel::hsa_fwd_bwd:
      if (len == k64K) return 12.0;
      if (len == k256K) return 50.0;
      break;
    case Kernel::retrieval:
    case Kernel::retrieval_mma:
    case Kernel::retrieval_gated:
      if (len == k64K) return 1.0;
      break;
    default: break;
  }
  return std::nullopt;
}

}  // namespace hsa::bench

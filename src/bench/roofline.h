// The floor a kernel cannot beat on a device, and the kernels' time targets (docs/architecture.md §9:
// count FLOPs and bytes first; the larger of FLOPs / peak and bytes / bandwidth is the floor). Free of CUDA
// (unit-tested everywhere).
#pragma once
#include "bench/kernel_work.h"

#include <optional>
#include <string>

namespace hsa::bench {

struct DevicePeak {
  std::string name;           // "H100 SXM"
  double flops_per_s = 0;     // dense bf16 tensor-core peak
  double bytes_per_s = 0;     // HBM bandwidth
};

// The datasheet peaks of a known GPU, from its CUDA device name ("NVIDIA H100 80GB HBM3", or the longer
// description "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)"); nullopt for a GPU not in the table (its floor is unknown).
std::optional<DevicePeak> device_peak(const std::string& device_name);

struct Floor {
  double ms = 0;
  bool compute_bound = false;  // FLOPs / peak >= bytes / bandwidth
};
// max(FLOPs / peak FLOP/s, bytes / peak bandwidth), in milliseconds.
Floor floor_of(const Work& work, const DevicePeak& peak);

// The time target for this kernel at this length (H100, the KernelShape defaults), if it names one:
// hsa_fwd <= 1.7 ms at 64K and <= 7 ms at 256K; hsa_fwd_bwd <= 12 ms at 64K and <= 50 ms at 256K; retrieval
// <= 1 ms at 64K.
std::optional<double> target_ms(Kernel kernel, int64_t len);

}  // namespace hsa::bench

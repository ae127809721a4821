// `hsa bench kernels` on the GPU: the attention kernels (HSA forward, forward+backward, retrieval, SWA forward and
// forward+backward) at the KernelShape defaults over a list of lengths. Per length the inputs are built once on the
// device (random bf16 values; chunk indices as causal retrieval gives them: token t selects min(K, t / S) distinct
// complete chunks); per kernel one warm-up call, then `repeats` calls each timed with CUDA events around the
// kernel-level call (hsa::cuda::*, buffers preallocated; the HSA routing's small device-to-host copy is inside the
// timing). A length whose buffers would not fit in free device memory is skipped with the reason.
// The arithmetic (FLOPs, bytes, floor, report) lives in kernel_work.h, roofline.h and kernel_report.h.
#pragma once
#include "bench/kernel_report.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace hsa::bench {

struct KernelBenchOptions {
  KernelShape shape;             // every field but len (the lengths below)
  std::vector<int64_t> lengths;  // ascending (parse_lengths)
  std::vector<Kernel> kernels;
  int repeats = 20;
};

struct KernelBenchCallbacks {
  std::function<void(const Measurement&)> on_result;  // after each measurement (the table row)
  std::function<void(const std::string&)> on_note;    // progress: building inputs, freeing memory
};

// False when hsa was built without the CUDA backend (then the functions below throw saying so).
bool kernel_bench_available();

// The GPU the benchmark runs on, "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)"; throws when there is none.
std::string kernel_bench_device();

// Runs every (length, kernel) pair, lengths outer; returns the measurements in that order, each with per_token set.
std::vector<Measurement> run_kernel_bench(const KernelBenchOptions& options, const std::optional<DevicePeak>& peak,
                                          const KernelBenchCallbacks& callbacks = {});

}  // namespace hsa::bench

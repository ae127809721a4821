// One measurement of `hsa bench kernels` and how it is reported: the derived figures (TFLOP/s, GB/s, floor,
// target, time per token), a table row per measurement, and the JSON record of a run
//   {device, commit, command, peak, shape, results: [...]}
// Free of CUDA (unit-tested everywhere); docs/benchmarks.md explains every field.
#pragma once
#include "bench/kernel_work.h"
#include "bench/roofline.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace hsa::bench {

struct Measurement {
  Kernel kernel = Kernel::hsa_fwd;
  int64_t len = 0;
  std::string status = "ok";  // "ok", "skipped" (did not fit in device memory) or "error" (the run threw)
  std::string reason;         // why, when not ok
  int repeats = 0;
  double median_ms = 0, min_ms = 0;       // of `repeats` CUDA-event timings after a warm-up call
  Work work;                              // counted, not measured
  std::optional<Floor> floor;             // unknown on a GPU outside the peak table
  std::optional<double> target_ms;        // the kernel's time target, where it has one
  std::optional<double> per_token;        // (median / L) over the same for the kernel's smallest measured L
  std::optional<double> check_rel_err;    // forward rows against the definition (SWA), relative error in norm

  bool ok() const { return status == "ok"; }
  double tflops() const { return work.flops / (median_ms * 1e-3) / 1e12; }
  double gbs() const { return work.bytes / (median_ms * 1e-3) / 1e9; }
};

// A timed measurement: median and min of times_ms (not empty), with the counted work, floor and target.
Measurement measured(Kernel kernel, const KernelShape& shape, std::vector<float> times_ms,
                     const std::optional<DevicePeak>& peak);
// A measurement that did not run (status "skipped" or "error"), still with its counts, floor and target.
Measurement not_measured(Kernel kernel, const KernelShape& shape, const std::string& status,
                         const std::string& reason, const std::optional<DevicePeak>& peak);

// Sets m.per_token against the first ok measurement of the same kernel in `earlier` (lengths ascend, so that is
// the smallest length), or to 1 when m is that first one.
void set_per_token(Measurement& m, const std::vector<Measurement>& earlier);

std::string table_header();
std::string table_row(const Measurement& m);  // one line, no newline

nlohmann::json to_json(const Measurement& m);
nlohmann::json shape_json(const KernelShape& shape);  // the shape without its length
nlohmann::json run_json(const std::string& device, const std::string& commit, const std::string& command,
                        const std::optional<DevicePeak>& peak, const KernelShape& shape,
                        const std::vector<Measurement>& results);

// HSA_COMMIT (set where the tree has no .git, e.g. a copy sent to a GPU machine), else `git rev-parse --short
// HEAD` in the working directory, else "unknown".
std::string current_commit();

}  // namespace hsa::bench

// `hsa bench`: benchmark programs that print a table as they go and record JSON with the device, commit and command
// (ARCHITECTURE §4). docs/benchmarks.md explains the columns and the floor.
//   hsa bench kernels [--lengths 4K,64K,1M] [--kernels hsa_fwd,retrieval] [--repeats 20] [--out FILE.json]
#include "bench/kernel_bench.h"
#include "cli/command.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

namespace hsa::cli {

namespace {

struct KernelsOptions {
  std::string lengths = "4096,16384,65536,262144,1048576";
  std::string kernels = "hsa_fwd,hsa_fwd_bwd,retrieval,swa_fwd,swa_fwd_bwd";
  int repeats = 20;
  int64_t swa_window = bench::KernelShape{}.window;
  std::string out;
};

void write_json(const std::string& path, const nlohmann::json& j) {
  const std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::ofstream f(p);
  HSA_CHECK(f.good(), "bench kernels: cannot write {}", path);
  f << j.dump(2) << "\n";
  HSA_CHECK(f.good(), "bench kernels: writing {} failed", path);
}

int run_kernels(const KernelsOptions& o) {
  using namespace hsa::bench;
  KernelBenchOptions options;
  HSA_CHECK(o.swa_window >= 1, "bench kernels: --swa-window must be at least 1 (got {})", o.swa_window);
  options.shape.window = o.swa_window;
  options.lengths = parse_lengths(o.lengths);
  options.kernels = parse_kernels(o.kernels);
  options.repeats = o.repeats;
  HSA_CHECK(kernel_bench_available(),
            "bench kernels: this hsa was built without the CUDA backend (nvcc not found, or -DHSA_CUDA=OFF); build "
            "with CUDA on a GPU machine (tools/gpu-check does) to benchmark the kernels");
  const std::string device = kernel_bench_device();
  const std::optional<DevicePeak> peak = device_peak(device);
  const KernelShape& shape = options.shape;
  fmt::print("device: {}\n", device);
  if (peak)
    fmt::print("floor: max(FLOPs / {:g} TFLOP/s, bytes / {:g} TB/s) ({} datasheet peaks, dense bf16 and HBM)\n",
               peak->flops_per_s / 1e12, peak->bytes_per_s / 1e12, peak->name);
  else
    fmt::print("floor: unknown (no peak FLOP/s and bandwidth for '{}' in src/bench/roofline.cpp)\n", device);
  fmt::print("shape: bf16, B=1, HQ={}, H={}, D={}, S={}, K={}, dr={}, SWA window {}; median and min of {} timings\n",
             shape.q_heads, shape.kv_heads, shape.head_dim, shape.chunk_size, shape.topk, shape.retrieval_dim,
             shape.window, o.repeats);
  fmt::print("{}\n", table_header());
  std::fflush(stdout);

  KernelBenchCallbacks callbacks;
  callbacks.on_result = [](const Measurement& m) {
    fmt::print("{}\n", table_row(m));
    std::fflush(stdout);
  };
  callbacks.on_note = [](const std::string& text) {
    fmt::print(stderr, "{}\n", text);
    std::fflush(stderr);
  };
  const std::vector<Measurement> results = run_kernel_bench(options, peak, callbacks);

  if (!o.out.empty()) {
    write_json(o.out, run_json(device, current_commit(), command_line(), peak, shape, results));
    fmt::print("wrote {}\n", o.out);
  }
  const auto errors = std::count_if(results.begin(), results.end(), [](auto& m) { return m.status == "error"; });
  if (errors > 0) fmt::print(stderr, "hsa bench kernels: {} measurement(s) failed (see the table)\n", errors);
  return errors > 0 ? 1 : 0;
}

Command reg("bench", "benchmarks that print a table and record JSON (device, commit, command)", [](CLI::App& app) {
  app.require_subcommand(1);
  auto kernels = std::make_shared<KernelsOptions>();
  CLI::App* kernels_cmd = app.add_subcommand(
      "kernels", "time the CUDA kernels of issue 4 (HSA forward, forward+backward, retrieval, SWA) against the floor");
  kernels_cmd->add_option("--lengths", kernels->lengths, "sequence lengths, comma-separated (4096, 64K, 1M)")
      ->capture_default_str();
  kernels_cmd
      ->add_option("--kernels", kernels->kernels,
                   "comma-separated: hsa_fwd, hsa_fwd_bwd, retrieval, swa_fwd, swa_fwd_bwd")
      ->capture_default_str();
  kernels_cmd->add_option("--repeats", kernels->repeats, "timed calls per (kernel, length), after one warm-up")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  kernels_cmd->add_option("--swa-window", kernels->swa_window, "window of the SWA kernels (tokens)")
      ->capture_default_str();
  kernels_cmd->add_option("--out", kernels->out, "write the results as JSON here (e.g. bench/results/<name>.json)");
  return [kernels, kernels_cmd]() -> int {
    if (kernels_cmd->parsed()) return run_kernels(*kernels);
    throw hsa::Error("bench: give a subcommand: kernels");
  };
});

}  // namespace

}  // namespace hsa::cli

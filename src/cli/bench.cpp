// `hsa bench`: benchmark programs that print a table as they go and record JSON with the device, commit and command
// (docs/architecture.md §9). docs/benchmarks.md explains the columns and the floor.
//   hsa bench kernels [--lengths 4K,64K,1M] [--kernels hsa_fwd,retrieval] [--repeats 20] [--out FILE.json]
//   hsa bench train -c configs/base-100m.json [-L 4096] [-b 1] [--steps 10] [--device cuda] [--out FILE.json]
#include "bench/kernel_bench.h"
#include "bench/kernel_report.h"
#include "bench/train_bench.h"
#include "cli/placement_options.h"
#include "util/file_util.h"
#include "cli/command.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

namespace hsa::cli {

namespace {

struct KernelsOptions {
  std::string lengths = "4096,16384,65536,262144,1048576";
  std::string kernels =
      "hsa_fwd,hsa_fwd_bwd,retrieval,swa_fwd,swa_fwd_bwd,hsa_decode,retrieval_scalar,retrieval_decode,"
      "retrieval_decode_scalar";
  int repeats = 20;
  int64_t swa_window = bench::KernelShape{}.window;
  std::string out;
};

void write_json(const std::string& path, const nlohmann::json& j) {
  const std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  write_file_atomic(path, j.dump(2) + "\n");
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

int run_train(const bench::TrainBenchOptions& o, const std::string& out) {
  const bench::TrainBenchResult r = bench::run_train_bench(o);
  const double tokens = double(o.batch * o.seq_len);
  fmt::print("device: {} ({})\nconfig: {} ({:.1f}M parameters, {:.1f}M active per token), batch {} x {} tokens\n",
             r.device, r.dtype, o.config_path, r.parameters / 1e6, r.active_parameters / 1e6, o.batch, o.seq_len);
  fmt::print("model FLOPs per token: {:.3g} (matmul {:.3g}, SWA {:.3g}, HSA {:.3g}, retrieval {:.3g}{})\n",
             r.flops.per_token(), r.flops.matmul, r.flops.swa, r.flops.hsa, r.flops.retrieval,
             r.flops.encoder > 0 ? fmt::format(", chunk encoder {:.3g}", r.flops.encoder) : "");
  fmt::print("step: median {:.1f} ms of {} (after {} warm-up) -> {:.0f} tokens/s, {:.3g} model TFLOP/s", r.median_ms,
             r.step_ms.size(), o.warmup_steps, tokens / (r.median_ms * 1e-3), r.model_tflops);
  if (r.mfu)
    fmt::print(", {:.1f}% of the {:g} TFLOP/s bf16 peak\n", 100.0 * *r.mfu, *r.peak_tflops);
  else
    fmt::print(" (peak unknown for this device)\n");
  if (!out.empty()) {
    write_json(out, bench::train_bench_json(o, r, bench::current_commit(), command_line()));
    fmt::print("wrote {}\n", out);
  }
  return 0;
}

Command reg("bench", "benchmarks that print a table and record JSON (device, commit, command)", [](CLI::App& app) {
  app.require_subcommand(1);
  auto kernels = std::make_shared<KernelsOptions>();
  CLI::App* kernels_cmd = app.add_subcommand(
      "kernels", "time the CUDA attention kernels (HSA forward, forward+backward, retrieval, SWA) against the floor");
  kernels_cmd->add_option("--lengths", kernels->lengths, "sequence lengths, comma-separated (4096, 64K, 1M)")
      ->capture_default_str();
  kernels_cmd
      ->add_option("--kernels", kernels->kernels,
                   "comma-separated: hsa_fwd, hsa_fwd_bwd, retrieval, swa_fwd, swa_fwd_bwd, hsa_decode, "
                   "retrieval_scalar (the first retrieval kernel), retrieval_decode, retrieval_decode_scalar (the "
                   "last token alone), retrieval_mma, retrieval_gated (the two tensor-core kernels by name)")
      ->capture_default_str();
  kernels_cmd->add_option("--repeats", kernels->repeats, "timed calls per (kernel, length), after one warm-up")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  kernels_cmd->add_option("--swa-window", kernels->swa_window, "window of the SWA kernels (tokens)")
      ->capture_default_str();
  kernels_cmd->add_option("--out", kernels->out, "write the results as JSON here (e.g. bench/results/<name>.json)");
  auto train = std::make_shared<bench::TrainBenchOptions>();
  auto train_out = std::make_shared<std::string>();
  CLI::App* train_cmd = app.add_subcommand(
      "train", "time whole training steps of a config and report model FLOP utilisation (bf16 peak)");
  train_cmd->add_option("-c,--config", train->config_path, "model config JSON (e.g. configs/base-100m.json)")
      ->required()
      ->check(CLI::ExistingFile);
  train_cmd->add_option("-L,--seq-len", train->seq_len, "tokens per sequence")->capture_default_str();
  train_cmd->add_option("-b,--batch", train->batch, "sequences per step")->capture_default_str();
  train_cmd->add_option("--steps", train->steps, "timed steps (the median is reported)")->capture_default_str();
  train_cmd->add_option("--warmup", train->warmup_steps, "untimed steps first")->capture_default_str();
  add_placement_options(*train_cmd, train->device, train->dtype);
  train_cmd->add_option("--out", *train_out, "write the result as JSON here (e.g. bench/results/<name>.json)");
  return [kernels, kernels_cmd, train, train_cmd, train_out]() -> int {
    if (kernels_cmd->parsed()) return run_kernels(*kernels);
    if (train_cmd->parsed()) return run_train(*train, *train_out);
    throw hsa::Error("bench: give a subcommand: kernels or train");
  };
});

}  // namespace

}  // namespace hsa::cli

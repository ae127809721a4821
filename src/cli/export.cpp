// `hsa export`: a checkpoint rewritten in another dtype, e.g. bf16 weights for shipping a model at half the size.
//   hsa export -m runs/small/published -o models/passkey-small --dtype bf16 --max-shard-mb 16
#include "cli/command.h"
#include "model/checkpoint.h"
#include "model/sharded_safetensors.h"

#include <fmt/format.h>

#include <filesystem>
#include <memory>

namespace hsa::cli {

namespace {

struct ExportOptions {
  std::string model;
  std::string out;
  std::string dtype = "bf16";
  bool force = false;
  int64_t max_shard_mb = 0;  // 0: one model.safetensors
};

// An existing --out is replaced only with --force, and only when it is a checkpoint (config.json): --force must
// not turn a typo into the loss of an unrelated directory. The whole directory is replaced, so no log or option
// file of the old model is left beside the new weights.
void check_export_target(const ExportOptions& o) {
  namespace fs = std::filesystem;
  if (!fs::exists(fs::symlink_status(o.out))) return;
  if (!o.force) fail_argument("export: '{}' exists; give --force to replace it", o.out);
  if (!fs::is_directory(fs::symlink_status(o.out)) || !fs::exists(fs::path(o.out) / "config.json"))
    fail_argument("export: '{}' is not a checkpoint directory (no config.json); --force replaces checkpoints only",
                  o.out);
  std::error_code ec;
  if (fs::equivalent(o.model, o.out, ec)) fail_argument("export: the output '{}' is the input checkpoint", o.out);
}

void run_export(const ExportOptions& o) {
  namespace fs = std::filesystem;
  check_export_target(o);
  // Written beside the target first, then swapped in: a failed export leaves the old model untouched.
  const fs::path out(o.out), staged = out.string() + ".export.tmp", old = out.string() + ".export.old";
  fs::remove_all(staged);
  try {
    export_checkpoint(o.model, staged.string(), parse_dtype(o.dtype), static_cast<uint64_t>(o.max_shard_mb) << 20);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(staged, ignored);
    throw;
  }
  if (fs::exists(out)) {
    fs::remove_all(old);
    fs::rename(out, old);
    fs::rename(staged, out);
    fs::remove_all(old);
  } else {
    fs::rename(staged, out);
  }
}

Command reg("export", "rewrite a checkpoint with its weights in another dtype (bf16 halves a shipped model)",
            [](CLI::App& app) {
              auto opts = std::make_shared<ExportOptions>();
              app.add_option("-m,--model", opts->model, "checkpoint directory to read")
                  ->required()
                  ->check(CLI::ExistingDirectory);
              app.add_option("-o,--out", opts->out, "checkpoint directory to write (config.json + model.safetensors or its shards)")
                  ->required();
              app.add_option("--dtype", opts->dtype, "dtype of the written weights: bf16 | f32")
                  ->check(CLI::IsMember({"f32", "bf16"}))
                  ->capture_default_str();
              app.add_option("--max-shard-mb", opts->max_shard_mb,
                             "write the weights as shards of at most this many MiB plus model.safetensors.index.json "
                             "(default: one model.safetensors)")
                  ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
              app.add_flag("--force", opts->force, "replace --out when it is an existing checkpoint directory");
              return [opts] {
                run_export(*opts);
                const auto bytes = model_weights_bytes(opts->out);
                fmt::print("wrote {} ({} weights, {:.1f} MB)\n", opts->out, opts->dtype, bytes / 1e6);
                return 0;
              };
            });

}  // namespace

}  // namespace hsa::cli

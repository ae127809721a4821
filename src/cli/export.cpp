// `hsa export`: a checkpoint rewritten in another dtype, e.g. bf16 weights for shipping a model at half the size.
//   hsa export -m runs/small/published -o models/passkey-small --dtype bf16
#include "cli/command.h"
#include "model/checkpoint.h"

#include <fmt/format.h>

#include <filesystem>
#include <memory>

namespace hsa::cli {

namespace {

struct ExportOptions {
  std::string model;
  std::string out;
  std::string dtype = "bf16";
};

Command reg("export", "rewrite a checkpoint with its weights in another dtype (bf16 halves a shipped model)",
            [](CLI::App& app) {
              auto opts = std::make_shared<ExportOptions>();
              app.add_option("-m,--model", opts->model, "checkpoint directory to read")
                  ->required()
                  ->check(CLI::ExistingDirectory);
              app.add_option("-o,--out", opts->out, "checkpoint directory to write (config.json + model.safetensors)")
                  ->required();
              app.add_option("--dtype", opts->dtype, "dtype of the written weights: bf16 | f32")
                  ->capture_default_str();
              return [opts] {
                export_checkpoint(opts->model, opts->out, parse_dtype(opts->dtype));
                const auto bytes = std::filesystem::file_size(std::filesystem::path(opts->out) / "model.safetensors");
                fmt::print("wrote {} ({} weights, {:.1f} MB)\n", opts->out, opts->dtype, bytes / 1e6);
                return 0;
              };
            });

}  // namespace

}  // namespace hsa::cli

// The --device / --dtype options shared by the commands that run a model (see infer/placement.h).
#pragma once
#include <CLI/CLI.hpp>

#include <string>

namespace hsa::cli {

inline void add_placement_options(CLI::App& app, std::string& device, std::string& dtype) {
  app.add_option("--device", device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app.add_option("--dtype", dtype, "compute dtype, f32 or bf16 (default: f32 on cpu, bf16 on cuda)")
      ->check(CLI::IsMember({"f32", "bf16"}));
}

}  // namespace hsa::cli

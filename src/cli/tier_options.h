// The chunk memory tier options shared by `hsa generate` and `hsa info` (model/memory_tiers.h,
// docs/architecture.md "Chunk memory tiers"). Sizes take unit suffixes: 512M, 2G, 1GiB (powers of 1024).
#pragma once
#include "model/memory_plan.h"

#include <CLI/CLI.hpp>

namespace hsa::cli {

inline void add_tier_options(CLI::App& app, TierRequest& r) {
  app.add_option("--memory-budget", r.device_budget,
                 "bytes of chunk-memory K/V pages kept where the model runs (RAM on cpu, GPU memory on cuda); the "
                 "rest goes to pinned host memory (cuda) and then --disk-dir. Default: cpu keeps everything, cuda "
                 "what leaves room for weights and activations")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::PositiveNumber);
  app.add_option("--host-budget", r.host_budget,
                 "cuda: bytes of K/V pages in pinned host memory beyond --memory-budget (default: half the free RAM)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::PositiveNumber);
  app.add_option("--disk-dir", r.disk_dir,
                 "directory for K/V pages beyond the memory budgets: a file in a new subdirectory, removed at exit")
      ->check(CLI::ExistingDirectory);
}

}  // namespace hsa::cli

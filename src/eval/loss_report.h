// The report of `hsa eval loss`: loss.json (everything, re-readable), loss.md (tables) and loss.svg (mean
// loss per position bucket, one line per context length). Several runs (HSA, SWA-only, dense models) merge
// into one report whose plot has one line per run, each at its longest length.
#pragma once
#include "eval/loss_eval.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace hsa::eval {

struct LengthLoss {
  int64_t length = 0;
  std::vector<int64_t> offsets;          // window starts in the shard
  std::vector<PositionBucket> buckets;   // summed over the windows
  double wall_s = 0;
  std::string skipped;                   // why the length was not evaluated; "" when it was
};

struct LossReport {
  nlohmann::json meta;  // model, device, dtype, data, data_tokens, samples, segment, commands, wall_s
  std::vector<LengthLoss> lengths;
};

nlohmann::json loss_report_json(const LossReport& report);
LossReport loss_report_from_json(const nlohmann::json& j);  // throws hsa::Error naming the missing key

// Markdown: the run's settings, then one row per position bucket and one column per length (mean loss in
// nats, 3 decimals), an "all positions" row and a "tokens" row; skipped lengths listed with the reason.
std::string loss_markdown(const LossReport& report);

// Writes loss.json, loss.md and loss.svg into dir (created when missing).
void write_loss_report(const std::filesystem::path& dir, const LossReport& report);

// Reads loss.json files (single runs, or merged ones whose runs are taken one by one) and writes into dir
// loss.json {"runs": [...], "commands": [...]}, loss.md (one comparison table: a column per run at its
// longest evaluated length, then each run's own table) and loss.svg (one line per run, named by its model).
void write_merged_loss_report(const std::filesystem::path& dir, const std::vector<std::string>& paths,
                              const std::string& command);

}  // namespace hsa::eval

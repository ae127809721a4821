// The report of a RULER run: a markdown table, a JSON record of every sample, an SVG plot of accuracy against
// context length (and a PNG of it when gnuplot is installed). A report is one run's, or several runs' (one per
// length, say, so that a long length cannot lose the short ones) merged by length.
#pragma once
#include "eval/ruler.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hsa::eval {

struct RulerReport {
  nlohmann::json meta;                   // model, device, dtype, seed, max_new_tokens, filler, commands
  std::vector<RulerTask> tasks;
  std::vector<int64_t> lengths;          // increasing
  std::vector<std::vector<double>> acc;  // [task][length], percent
  nlohmann::json per_length = nlohmann::json::array();  // {length, samples, wall_s} per length
  nlohmann::json records = nlohmann::json::array();     // one per sample
  double wall_s = 0;
};

// Writes ruler.md, ruler.json and ruler.svg into dir (which must exist), and ruler.png when gnuplot is on PATH.
void write_ruler_report(const std::filesystem::path& dir, const RulerReport& report);

// Combines ruler.json files into one report: the union of their lengths (a length in several files keeps the
// last one's), tasks in the order `hsa ruler --help` lists them, every file's commands and records. Every file
// must hold the same tasks.
RulerReport merge_ruler_reports(const std::vector<std::string>& paths);

}  // namespace hsa::eval

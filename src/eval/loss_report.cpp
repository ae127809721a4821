#include "eval/loss_report.h"

#include "eval/plot_svg.h"
#include "util/file_util.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace hsa::eval {
namespace fs = std::filesystem;
namespace {

std::string range_label(const PositionBucket& b) {
  return fmt::format("{}-{}", b.begin == 0 ? "0" : length_label(b.begin), length_label(b.end));
}

// One markdown table: a row per bucket range found in any column, a column per (name, buckets).
std::string bucket_table(const std::vector<std::pair<std::string, const std::vector<PositionBucket>*>>& columns) {
  std::map<std::pair<int64_t, int64_t>, PositionBucket> rows;  // ordered by begin
  for (const auto& [name, buckets] : columns)
    for (const PositionBucket& b : *buckets) rows[{b.begin, b.end}] = b;
  std::string md = "| positions |";
  std::string rule = "|---|";
  for (const auto& [name, buckets] : columns) {
    md += fmt::format(" {} |", name);
    rule += "---:|";
  }
  md += "\n" + rule + "\n";
  for (const auto& [range, row] : rows) {
    md += fmt::format("| {} |", range_label(row));
    for (const auto& [name, buckets] : columns) {
      auto it = std::find_if(buckets->begin(), buckets->end(),
                             [&](const PositionBucket& b) { return b.begin == range.first && b.end == range.second; });
      md += it == buckets->end() || it->tokens == 0 ? " - |" : fmt::format(" {:.3f} |", it->mean());
    }
    md += "\n";
  }
  md += "| all positions |";
  for (const auto& [name, buckets] : columns) md += fmt::format(" **{:.3f}** |", mean_loss(*buckets));
  md += "\n| tokens |";
  for (const auto& [name, buckets] : columns) md += fmt::format(" {} |", total_tokens(*buckets));
  return md + "\n";
}

// A y range with round ends and about five grid lines around every value drawn.
void nice_y_range(const std::vector<LineSeries>& series, LineChart& chart) {
  double lo = INFINITY, hi = -INFINITY;
  for (const LineSeries& s : series)
    for (double y : s.y) lo = std::min(lo, y), hi = std::max(hi, y);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  const double raw_step = std::max((hi - lo) / 5, 1e-3);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw_step)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * magnitude >= raw_step) {
      step = m * magnitude;
      break;
    }
  chart.y_min = std::floor(lo / step) * step;
  chart.y_max = std::ceil(hi / step) * step;
  if (chart.y_max <= chart.y_min) chart.y_max = chart.y_min + step;
  chart.y_ticks.clear();
  for (double t = chart.y_min; t <= chart.y_max + step / 2; t += step) chart.y_ticks.push_back(std::round(t / step) * step);
}

// Bucket ends of the evaluated buckets: the points of a line.
LineSeries bucket_line(const std::string& name, const std::vector<PositionBucket>& buckets) {
  LineSeries s{name, {}, {}};
  for (const PositionBucket& b : buckets)
    if (b.tokens > 0) s.x.push_back(b.end), s.y.push_back(b.mean());
  return s;
}

std::string loss_svg(const std::string& title, const std::vector<LineSeries>& series) {
  LineChart chart;
  chart.title = title;
  chart.x_label = "token position (end of each power-of-two bucket, log scale)";
  chart.y_label = "mean next-token loss (nats)";
  for (const LineSeries& s : series) chart.x_ticks.insert(chart.x_ticks.end(), s.x.begin(), s.x.end());
  std::sort(chart.x_ticks.begin(), chart.x_ticks.end());
  chart.x_ticks.erase(std::unique(chart.x_ticks.begin(), chart.x_ticks.end()), chart.x_ticks.end());
  if (chart.x_ticks.empty()) chart.x_ticks = {kFirstBucketEnd};
  nice_y_range(series, chart);
  return line_plot_svg(chart, series);
}

std::string model_name(const LossReport& r) { return r.meta.value("model", std::string("model")); }

const LengthLoss* longest_evaluated(const LossReport& r) {
  const LengthLoss* best = nullptr;
  for (const LengthLoss& l : r.lengths)
    if (l.skipped.empty() && (!best || l.length > best->length)) best = &l;
  return best;
}

}  // namespace

nlohmann::json loss_report_json(const LossReport& r) {
  nlohmann::json lengths = nlohmann::json::array();
  for (const LengthLoss& l : r.lengths) {
    nlohmann::json buckets = nlohmann::json::array();
    for (const PositionBucket& b : l.buckets)
      buckets.push_back({{"begin", b.begin}, {"end", b.end}, {"mean_loss", b.mean()}, {"loss_sum", b.loss_sum},
                         {"tokens", b.tokens}});
    nlohmann::json j = {{"length", l.length}, {"windows", l.offsets.size()}, {"offsets", l.offsets},
                        {"mean_loss", mean_loss(l.buckets)}, {"tokens", total_tokens(l.buckets)},
                        {"wall_s", l.wall_s}, {"buckets", buckets}};
    if (!l.skipped.empty()) j["skipped"] = l.skipped;
    lengths.push_back(std::move(j));
  }
  nlohmann::json out = r.meta;
  out["lengths"] = lengths;
  return out;
}

LossReport loss_report_from_json(const nlohmann::json& j) {
  HSA_CHECK(j.is_object() && j.contains("lengths"), "eval loss: a loss.json needs a 'lengths' array");
  LossReport r;
  r.meta = j;
  r.meta.erase("lengths");
  for (const nlohmann::json& l : j.at("lengths")) {
    LengthLoss ll;
    ll.length = l.at("length").get<int64_t>();
    ll.offsets = l.value("offsets", std::vector<int64_t>{});
    ll.wall_s = l.value("wall_s", 0.0);
    ll.skipped = l.value("skipped", std::string());
    for (const nlohmann::json& b : l.at("buckets"))
      ll.buckets.push_back({b.at("begin").get<int64_t>(), b.at("end").get<int64_t>(), b.at("loss_sum").get<double>(),
                            b.at("tokens").get<int64_t>()});
    r.lengths.push_back(std::move(ll));
  }
  return r;
}

std::string loss_markdown(const LossReport& r) {
  const nlohmann::json& m = r.meta;
  std::string md = fmt::format("# Held-out loss: {}\n\n", model_name(r));
  md += fmt::format("- data: {} ({} tokens)\n", m.value("data", std::string("?")), m.value("data_tokens", int64_t{0}));
  md += fmt::format("- device: {}, dtype: {}, segment: {} tokens, windows per length: {}\n",
                    m.value("device", std::string("?")), m.value("dtype", std::string("?")),
                    m.value("segment", int64_t{0}), m.value("samples", int64_t{0}));
  md += "- mean next-token loss in nats per position bucket (positions of the predicting token in the window)\n\n";
  std::vector<std::string> names;
  std::vector<std::pair<std::string, const std::vector<PositionBucket>*>> columns;
  for (const LengthLoss& l : r.lengths)
    if (l.skipped.empty()) columns.push_back({"L=" + length_label(l.length), &l.buckets});
  if (!columns.empty()) md += bucket_table(columns);
  for (const LengthLoss& l : r.lengths)
    if (!l.skipped.empty()) md += fmt::format("\nL={} skipped: {}\n", length_label(l.length), l.skipped);
  return md;
}

void write_loss_report(const fs::path& dir, const LossReport& r) {
  fs::create_directories(dir);
  write_file_atomic((dir / "loss.json").string(), loss_report_json(r).dump(2) + "\n");
  write_file_atomic((dir / "loss.md").string(), loss_markdown(r));
  std::vector<LineSeries> series;
  for (const LengthLoss& l : r.lengths)
    if (l.skipped.empty()) series.push_back(bucket_line("L=" + length_label(l.length), l.buckets));
  write_file_atomic((dir / "loss.svg").string(), loss_svg("Held-out loss by position: " + model_name(r), series));
}

void write_merged_loss_report(const fs::path& dir, const std::vector<std::string>& paths, const std::string& command) {
  std::vector<LossReport> runs;
  nlohmann::json commands = nlohmann::json::array();
  for (const std::string& path : paths) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
      fail("eval loss --merge: {} is not JSON ({})", path, e.what());
    }
    if (j.contains("runs")) {
      for (const nlohmann::json& run : j.at("runs")) runs.push_back(loss_report_from_json(run));
    } else {
      runs.push_back(loss_report_from_json(j));
    }
  }
  HSA_CHECK(!runs.empty(), "eval loss --merge: no runs in {}", fmt::join(paths, ", "));
  nlohmann::json out_runs = nlohmann::json::array();
  for (const LossReport& r : runs) {
    out_runs.push_back(loss_report_json(r));
    for (const nlohmann::json& c : r.meta.value("commands", nlohmann::json::array())) commands.push_back(c);
  }
  commands.push_back(command);
  fs::create_directories(dir);
  write_file_atomic((dir / "loss.json").string(), nlohmann::json{{"runs", out_runs}, {"commands", commands}}.dump(2) + "\n");

  std::vector<std::pair<std::string, const std::vector<PositionBucket>*>> columns;
  std::vector<LineSeries> series;
  for (const LossReport& r : runs) {
    const LengthLoss* l = longest_evaluated(r);
    if (!l) continue;
    const std::string name = fmt::format("{} (L={})", model_name(r), length_label(l->length));
    columns.push_back({name, &l->buckets});
    series.push_back(bucket_line(name, l->buckets));
  }
  std::string md = "# Held-out loss by position: comparison\n\nEach run at its longest evaluated length; mean "
                   "next-token loss in nats.\n\n";
  if (!columns.empty()) md += bucket_table(columns);
  for (const LossReport& r : runs) md += "\n" + loss_markdown(r);
  write_file_atomic((dir / "loss.md").string(), md);
  write_file_atomic((dir / "loss.svg").string(), loss_svg("Held-out loss by position", series));
}

}  // namespace hsa::eval

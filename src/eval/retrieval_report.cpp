#include "eval/retrieval_report.h"

#include "util/file_util.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace hsa::eval {
namespace fs = std::filesystem;
namespace {

double ratio(double sum, int64_t n) { return n > 0 ? sum / static_cast<double>(n) : NAN; }

std::string cell_text(double v, const char* format) {
  return std::isfinite(v) ? fmt::format(fmt::runtime(format), v) : "-";
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

struct CellMeans {
  double recall, chance_recall, rank, chance_rank, weight, sink, spread2, spread_median, cosine;
};

CellMeans means(const RetrievalCell& c) {
  return {ratio(double(c.selected), c.samples), ratio(c.chance_recall_sum, c.samples),
          ratio(c.rank_sum, c.samples),         ratio(c.chance_rank_sum, c.samples),
          ratio(c.weight_sum, c.selected),      ratio(double(c.sink), c.probed),
          ratio(c.spread2_sum, c.spread_n),     ratio(c.spread_median_sum, c.spread_n),
          ratio(c.cosine_sum, c.cosine_n)};
}

}  // namespace

void RetrievalCell::add(const HeadRetrieval& r, int64_t topk) {
  ++probed;
  if (r.top_chunk == 0 && r.needle_rank != 0) ++sink;  // chunk 0 on top, and it is not the needle's
  if (std::isfinite(r.top1_minus_top2))
    spread2_sum += r.top1_minus_top2, spread_median_sum += r.top1_minus_median, ++spread_n;
  if (std::isfinite(r.landmark_cosine)) cosine_sum += r.landmark_cosine, ++cosine_n;
  if (r.needle_rank < 0) return;
  ++samples;
  rank_sum += static_cast<double>(r.needle_rank);
  chance_rank_sum += static_cast<double>(r.visible - 1) / 2;
  chance_recall_sum += static_cast<double>(std::min(topk, r.visible)) / static_cast<double>(r.visible);
  if (r.selected) ++selected, weight_sum += r.needle_weight;
}

void RetrievalGroup::add(const std::vector<LayerRetrieval>& layers, int64_t topk) {
  if (cells.empty())
    for (const LayerRetrieval& l : layers)
      for (size_t h = 0; h < l.heads.size(); ++h) cells.push_back(RetrievalCell{l.layer, static_cast<int64_t>(h)});
  size_t i = 0;
  for (const LayerRetrieval& l : layers)
    for (const HeadRetrieval& h : l.heads) {
      HSA_CHECK(i < cells.size() && cells[i].layer == l.layer, "eval retrieval: sample with other layers or heads");
      cells[i++].add(h, topk);
    }
  // Visibility depends on the position only: every layer and head agrees.
  if (!layers.empty() && !layers.front().heads.empty() && layers.front().heads.front().needle_rank < 0) ++not_visible;
}

std::string retrieval_markdown(const RetrievalReport& report) {
  const nlohmann::json& m = report.meta;
  auto meta = [&](const char* key) {
    return !m.contains(key) ? "?" : m[key].is_string() ? m[key].get<std::string>() : m[key].dump();
  };
  std::string md = fmt::format("# Retrieval at the answer position: {}\n\n", meta("model"));
  md += fmt::format(
      "Top-K = {} chunks of {} tokens; {} phrasings, filler {}, {} ({}). The needle chunk holds the first answer "
      "token's first occurrence in the prompt; the query is the last prompt position. recall@K: the needle chunk "
      "among the chunks the model selected (chance: K / visible chunks); rank: 0 = highest score (chance: "
      "(visible - 1) / 2); weight: its retrieval weight when selected; sink: share of samples whose top chunk is "
      "chunk 0 without holding the needle; spreads in scaled scores; cos: mean pairwise cosine of the visible "
      "landmarks.\n\n",
      report.topk, meta("chunk_size"), meta("phrasings"), meta("filler"), meta("device"), meta("dtype"));
  md += "| task | length | layer | head | n | recall@K | chance | rank | chance rank | weight | sink | top1-top2 | "
        "top1-median | cos |\n";
  md += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  std::string notes;
  for (const RetrievalGroup& g : report.groups) {
    for (const RetrievalCell& c : g.cells) {
      const CellMeans x = means(c);
      md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", g.task, g.length,
                        c.layer, c.head, c.samples, cell_text(x.recall, "{:.2f}"), cell_text(x.chance_recall, "{:.2f}"),
                        cell_text(x.rank, "{:.1f}"), cell_text(x.chance_rank, "{:.1f}"), cell_text(x.weight, "{:.3f}"),
                        cell_text(x.sink, "{:.2f}"), cell_text(x.spread2, "{:.2f}"),
                        cell_text(x.spread_median, "{:.2f}"), cell_text(x.cosine, "{:.3f}"));
    }
    if (g.cells.empty()) md += fmt::format("| {} | {} | - | - | 0 | | | | | | | | | |\n", g.task, g.length);
    if (g.needle_not_found > 0 || g.not_visible > 0)
      notes += fmt::format("- {} at {}: of {} samples, {} had no needle in the prompt, {} had it in a chunk not "
                           "visible at the answer position (too recent)\n",
                           g.task, g.length, g.samples, g.needle_not_found, g.not_visible);
  }
  if (!notes.empty()) md += "\n" + notes;
  return md;
}

nlohmann::json retrieval_json(const RetrievalReport& report) {
  nlohmann::json groups = nlohmann::json::array();
  for (const RetrievalGroup& g : report.groups) {
    nlohmann::json cells = nlohmann::json::array();
    for (const RetrievalCell& c : g.cells) {
      const CellMeans x = means(c);
      cells.push_back({{"layer", c.layer},
                       {"head", c.head},
                       {"samples", c.samples},
                       {"probed", c.probed},
                       {"recall", number_or_null(x.recall)},
                       {"chance_recall", number_or_null(x.chance_recall)},
                       {"mean_rank", number_or_null(x.rank)},
                       {"chance_rank", number_or_null(x.chance_rank)},
                       {"mean_needle_weight", number_or_null(x.weight)},
                       {"sink", number_or_null(x.sink)},
                       {"top1_minus_top2", number_or_null(x.spread2)},
                       {"top1_minus_median", number_or_null(x.spread_median)},
                       {"landmark_cosine", number_or_null(x.cosine)}});
    }
    groups.push_back({{"task", g.task},
                      {"length", g.length},
                      {"samples", g.samples},
                      {"needle_not_found", g.needle_not_found},
                      {"not_visible", g.not_visible},
                      {"wall_s", g.wall_s},
                      {"cells", cells}});
  }
  nlohmann::json j = report.meta;
  j["topk"] = report.topk;
  j["groups"] = groups;
  return j;
}

void write_retrieval_report(const fs::path& dir, const RetrievalReport& report) {
  fs::create_directories(dir);
  write_file_atomic((dir / "retrieval.json").string(), retrieval_json(report).dump(2) + "\n");
  write_file_atomic((dir / "retrieval.md").string(), retrieval_markdown(report));
}

}  // namespace hsa::eval

// The report of `hsa eval retrieval`: per task x length x HSA layer x retrieval head, the needle chunk's recall
// in the model's top-K (and its chance rate), its mean rank (and the chance rank), the weight it got when selected,
// how often the first chunk scores highest (a sink), the score spreads and the landmark cosine; as a markdown
// table (retrieval.md, also printed) and JSON (retrieval.json). docs/training-lm.md says how to read them.
#pragma once
#include "eval/retrieval_probe.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hsa::eval {

// Running sums of one task x length x layer x head over its samples.
struct RetrievalCell {
  int64_t layer = 0, head = 0;
  int64_t probed = 0;        // samples analysed (their needle was found in the prompt)
  int64_t samples = 0;       // of those, the ones whose needle chunk was visible: recall, rank and weight use these
  int64_t selected = 0;      // needle chunk in the model's top-K
  double rank_sum = 0;       // 0-based ranks
  double chance_rank_sum = 0;    // (visible - 1) / 2 per sample: the mean rank of a random ordering
  double chance_recall_sum = 0;  // min(K, visible) / visible per sample
  double weight_sum = 0;         // over the selected samples
  int64_t sink = 0;              // samples (of probed) whose top chunk is chunk 0, not the needle's chunk
  double spread2_sum = 0, spread_median_sum = 0, cosine_sum = 0;
  int64_t spread_n = 0, cosine_n = 0;
  void add(const HeadRetrieval& r, int64_t topk);
};

struct RetrievalGroup {  // one task at one length
  std::string task;
  int64_t length = 0;
  int64_t samples = 0;           // generated
  int64_t needle_not_found = 0;  // samples whose answer never occurs in the prompt (not analysed)
  int64_t not_visible = 0;       // analysed samples whose needle chunk was not visible at the answer position
  double wall_s = 0;
  std::vector<RetrievalCell> cells;  // layer-major, heads in order
  // Adds one sample's probe (the first one creates the cells).
  void add(const std::vector<LayerRetrieval>& layers, int64_t topk);
};

struct RetrievalReport {
  nlohmann::json meta;  // model, device, dtype, tokenizer, phrasings, filler, seed, chunk_size, topk, commands
  int64_t topk = 0;
  std::vector<RetrievalGroup> groups;
};

std::string retrieval_markdown(const RetrievalReport& report);
nlohmann::json retrieval_json(const RetrievalReport& report);
// Writes retrieval.md and retrieval.json into dir (created when missing).
void write_retrieval_report(const std::filesystem::path& dir, const RetrievalReport& report);

}  // namespace hsa::eval

// What the HSA retrieval looks at when a model answers a synthetic task (the core of `hsa eval retrieval`). At
// the last prompt position, the one predicting the first answer token, for every HSA layer and retrieval head
// (one per KV head): where the needle's chunk ranks among the scores of the chunks visible there, whether the
// model's top-K selected it and with what weight, how peaked the scores are, and how alike the landmarks are.
// These tell apart the ways retrieval fails: the needle chunk never selected (rank at chance), selected but
// outweighed (one sink chunk taking all the weight), or landmarks all alike (cosine near 1, nothing to rank by).
#pragma once
#include "model/model.h"
#include "text/tasks.h"
#include "text/tokenizer.h"

#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace hsa::eval {

// Token index in [0, prompt_length) where the needle starts: the first occurrence of the answer's tokens in the
// prompt; when they never occur there (answers of several values "v1, v2", or a subword split that differs in
// context), the token holding the first character of the first occurrence of the answer's first value (its
// text before ", ") in the prompt's text. -1 when neither occurs.
int64_t find_needle(const TaskSample& sample, const Tokenizer& tokenizer);

// One retrieval head at one query position.
struct HeadRetrieval {
  int64_t visible = 0;       // chunks the query may retrieve (the retrieval op's visibility rule)
  int64_t needle_rank = -1;  // 0: the highest score of the visible chunks; -1: no needle chunk, or not visible
  bool selected = false;     // the model's selected chunks (its top-K) hold the needle chunk
  double needle_weight = 0;  // the retrieval weight the needle chunk got (0 when not selected)
  int64_t top_chunk = -1;    // the visible chunk with the highest score (-1 when none)
  // Scaled scores, as the model ranks and weights them; NaN with fewer than 2 visible chunks.
  double top1_minus_top2 = NAN, top1_minus_median = NAN;
  double landmark_cosine = NAN;  // mean cosine of (a sample of) pairs of visible landmarks; NaN with fewer than 2
};

// The heads of one HSA layer's cache (batch 1) at its last query row, for a needle in chunk `needle_chunk`
// (-1: none). The ranking scores every visible chunk with the retrieval op itself (top-K = all visible), so
// ranks follow the model's own scores and tie rule; `selected` and the weight come from the cache's selection.
// The landmark cosine averages all pairs when there are at most `max_pairs`, else that many pairs drawn at
// random (a fixed seed: the same pairs on every run).
std::vector<HeadRetrieval> analyse_retrieval(const HsaCache& cache, int64_t needle_chunk, int64_t max_pairs = 256);

struct LayerRetrieval {
  int64_t layer = 0;  // model layer index
  std::vector<HeadRetrieval> heads;
};

// Feeds prompt[0, n - 1) to a fresh state in segments ending at multiples of `segment` positions (no cache: the
// memory an inference needs, plus one segment's logits), then the last prompt token alone with an HSA trace, and
// analyses every HSA layer there. The needle sits in chunk `needle_chunk` (-1: none). progress(tokens read) runs
// after each segment.
std::vector<LayerRetrieval> probe_retrieval(const Model& model, std::span<const int32_t> prompt, int64_t needle_chunk,
                                            int64_t segment, const std::function<void(int64_t)>& progress = {});

}  // namespace hsa::eval

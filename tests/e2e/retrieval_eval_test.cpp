// hsa eval retrieval: the analysis of one HSA layer's retrieval on hand-set queries and landmarks (known ranks,
// weights, spreads, cosines, the window mask), the needle search for byte-level and BPE samples, the trace of the
// last prompt token against a training forward's cache, and models/passkey-tiny's retrieving head.
#include "eval/retrieval_probe.h"
#include "eval/retrieval_report.h"
#include "model/checkpoint.h"
#include "model/placement.h"
#include "ops/retrieval.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

using namespace hsa;
using namespace hsa::eval;

namespace {

constexpr int64_t kChunks = 10, kHeads = 2, kDim = 4;

// Two query rows (only the last is analysed, at position 40) and 10 chunks of 4 tokens. Head 0: the query is
// e0, every landmark is (0.1, 1, 0, 0) but chunk 6's (2, 1, 0, 0), so chunk 6 wins by far. Head 1: the query is
// e2 and chunk c's landmark is (0, 0, c, 0): the most recent chunks win, chunk 6 ranks 3rd from the top (0-based).
HsaCache hand_set_cache(int64_t window) {
  std::vector<double> q(2 * kHeads * kDim, 0.0), lm(kChunks * kHeads * kDim, 0.0);
  q[0 * kHeads * kDim + 0 * kDim + 3] = 1;  // row 0: something else, must not be analysed
  q[0 * kHeads * kDim + 1 * kDim + 3] = 1;
  q[1 * kHeads * kDim + 0 * kDim + 0] = 1;
  q[1 * kHeads * kDim + 1 * kDim + 2] = 1;
  for (int64_t c = 0; c < kChunks; ++c) {
    lm[(c * kHeads + 0) * kDim + 0] = c == 6 ? 2.0 : 0.1;
    lm[(c * kHeads + 0) * kDim + 1] = 1;
    lm[(c * kHeads + 1) * kDim + 2] = static_cast<double>(c);
  }
  HsaCache cache;
  cache.q_ret = Tensor::from_values(q, {1, 2, kHeads, kDim});
  cache.landmarks = Tensor::from_values(lm, {1, kChunks, kHeads, kDim});
  cache.retrieval_params =
      ops::RetrievalParams{.chunk_size = 4, .topk = 3, .window = window, .q_start = 39, .scale = 0.5};
  cache.retrieval = ops::retrieval_forward(cache.q_ret, cache.landmarks, cache.retrieval_params);
  cache.empty = false;
  return cache;
}

double passkey_tiny_head_recall(const RetrievalGroup& g, int64_t layer, int64_t head) {
  for (const RetrievalCell& c : g.cells)
    if (c.layer == layer && c.head == head) return c.samples ? double(c.selected) / double(c.samples) : -1;
  return -1;
}

}  // namespace

TEST(RetrievalProbe, HandSetLandmarksGiveKnownRanksWeightsAndSpreads) {
  const std::vector<HeadRetrieval> heads = analyse_retrieval(hand_set_cache(0), /*needle_chunk=*/6);
  ASSERT_EQ(heads.size(), 2u);
  const HeadRetrieval& a = heads[0];
  EXPECT_EQ(a.visible, 10);  // position 40: the chunks ending at or before it
  EXPECT_EQ(a.needle_rank, 0);
  EXPECT_TRUE(a.selected);
  EXPECT_EQ(a.top_chunk, 6);
  // Scaled scores 0.5 * <q, landmark>: 1.0 for chunk 6, 0.05 for the rest; softmax over the top 3.
  EXPECT_NEAR(a.needle_weight, std::exp(1.0) / (std::exp(1.0) + 2 * std::exp(0.05)), 1e-6);
  EXPECT_NEAR(a.top1_minus_top2, 0.95, 1e-6);
  EXPECT_NEAR(a.top1_minus_median, 0.95, 1e-6);
  const double odd = 1.2 / (std::sqrt(5.0) * std::sqrt(1.01));  // chunk 6 against any other: 9 of the 45 pairs
  EXPECT_NEAR(a.landmark_cosine, (36 + 9 * odd) / 45, 1e-6);

  const HeadRetrieval& b = heads[1];
  EXPECT_EQ(b.needle_rank, 3);  // chunks 9, 8, 7 score higher
  EXPECT_FALSE(b.selected);
  EXPECT_EQ(b.needle_weight, 0);
  EXPECT_EQ(b.top_chunk, 9);
  EXPECT_NEAR(b.top1_minus_top2, 0.5, 1e-6);
  EXPECT_NEAR(b.top1_minus_median, 4.5 - 2.25, 1e-6);
  EXPECT_NEAR(b.landmark_cosine, 1.0, 1e-6);  // collinear; chunk 0's zero landmark has no cosine
}

TEST(RetrievalProbe, TheWindowMaskHidesRecentChunksAsTheModelDoes) {
  // Window 16 at position 40: chunk c is visible iff c * 4 <= 24, chunks 0..6.
  const HsaCache cache = hand_set_cache(16);
  std::vector<HeadRetrieval> heads = analyse_retrieval(cache, 6);
  EXPECT_EQ(heads[1].visible, 7);
  EXPECT_EQ(heads[1].needle_rank, 0);  // chunk 6 is now the most recent visible one
  EXPECT_TRUE(heads[1].selected);
  heads = analyse_retrieval(cache, 8);
  EXPECT_EQ(heads[0].needle_rank, -1);
  EXPECT_FALSE(heads[0].selected);

  RetrievalGroup g;
  g.add({LayerRetrieval{2, heads}}, 3);
  EXPECT_EQ(g.not_visible, 1);
  EXPECT_EQ(g.cells.size(), 2u);
  EXPECT_EQ(g.cells[0].probed, 1);
  EXPECT_EQ(g.cells[0].samples, 0);  // recall and rank leave it out
}

TEST(RetrievalProbe, ReportAveragesOverSamples) {
  RetrievalReport report;
  report.topk = 3;
  report.meta = {{"model", "hand-set"}, {"chunk_size", 4}};
  RetrievalGroup g;
  g.task = "passkey";
  g.length = 41;
  g.samples = 2;
  g.add({LayerRetrieval{2, analyse_retrieval(hand_set_cache(0), 6)}}, 3);
  g.add({LayerRetrieval{2, analyse_retrieval(hand_set_cache(0), 0)}}, 3);  // head 0: rank 9 (ties: recent first)
  report.groups.push_back(g);
  const nlohmann::json j = retrieval_json(report);
  const nlohmann::json& head0 = j["groups"][0]["cells"][0];
  EXPECT_EQ(head0["samples"], 2);
  EXPECT_DOUBLE_EQ(head0["recall"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(head0["mean_rank"].get<double>(), (0 + 9) / 2.0);
  EXPECT_DOUBLE_EQ(head0["chance_rank"].get<double>(), 4.5);
  EXPECT_DOUBLE_EQ(head0["chance_recall"].get<double>(), 0.3);
  EXPECT_DOUBLE_EQ(head0["sink"].get<double>(), 0.0);
  const nlohmann::json& head1 = j["groups"][0]["cells"][1];
  EXPECT_TRUE(head1["mean_needle_weight"].is_null());  // never selected
  // A sink is chunk 0 on top while the needle is elsewhere; a needle in chunk 0 on top is retrieval working.
  RetrievalCell c;
  c.add(HeadRetrieval{.visible = 10, .needle_rank = 0, .selected = true, .needle_weight = 0.9, .top_chunk = 0}, 3);
  c.add(HeadRetrieval{.visible = 10, .needle_rank = 5, .top_chunk = 0}, 3);
  EXPECT_EQ(c.sink, 1);
  EXPECT_EQ(c.spread_n, 0);  // NaN spreads are left out
  const std::string md = retrieval_markdown(report);
  EXPECT_NE(md.find("| passkey | 41 | 2 | 0 | 2 | 0.50 | 0.30 | 4.5 | 4.5 |"), std::string::npos) << md;
}

TEST(RetrievalProbe, NeedleIsTheAnswersFirstOccurrenceForBytesAndBpe) {
  const FillerText filler;
  const ByteTokenizer bytes;
  const TaskSample passkey = make_task_sample(TaskKind::passkey, 2048, 5, filler);
  const int64_t at = find_needle(passkey, bytes);
  ASSERT_GE(at, 0);
  EXPECT_LT(at, passkey.prompt_length);
  EXPECT_EQ(bytes.decode(std::span(passkey.tokens).subspan(size_t(at), passkey.answer.size())), passkey.answer);

  // Several values ("v1, v2, v3"): the first value's place in the text.
  const std::string lm_dir = std::string(HSA_SOURCE_DIR) + "/models/lm-20m";
  const auto bpe = load_tokenizer(ModelConfig::from_file(lm_dir + "/config.json").tokenizer, lm_dir);
  const TaskSample multi = make_task_sample(TaskKind::multi_value, 1024, 3, filler, *bpe, Phrasings::train);
  const std::string first = multi.answer.substr(0, multi.answer.find(", "));
  ASSERT_NE(first, multi.answer);
  const int64_t m = find_needle(multi, *bpe);
  ASSERT_GE(m, 0);
  const std::span<const int32_t> prompt(multi.tokens.data(), size_t(multi.prompt_length));
  EXPECT_EQ(bpe->decode(prompt.first(size_t(m))).find(first), std::string::npos);      // not before it
  // It starts there: the tokens from m (each at least one byte) hold it.
  EXPECT_LE(bpe->decode(prompt.subspan(size_t(m), first.size() + 1)).find(first), 1u)  // after a space, if any
      << "answer '" << multi.answer << "' needle at " << m;
}

// The lead's probe saw one head of layer 2 put the pass key's chunk first. The trace of the last token after a
// plain prefill must also see exactly what a training forward's cache sees at that position.
TEST(RetrievalProbe, PasskeyTinyRetrievesTheNeedleAndTheTraceMatchesTheTrainingCache) {
  Checkpoint ck = load_checkpoint(std::string(HSA_SOURCE_DIR) + "/models/passkey-tiny");
  const Model model = place_model(ck, resolve_placement("cpu", "f32"));
  const int64_t S = model.config().chunk_size, K = model.config().chunk_topk;
  const FillerText filler;
  const ByteTokenizer bytes;
  RetrievalGroup g;
  for (uint64_t s = 0; s < 2; ++s) {
    const TaskSample t = make_task_sample(TaskKind::passkey, 4096, 100 + s, filler, bytes, Phrasings::legacy);
    const int64_t needle = find_needle(t, bytes);
    ASSERT_GE(needle, 0);
    const std::span<const int32_t> prompt(t.tokens.data(), size_t(t.prompt_length));
    g.add(probe_retrieval(model, prompt, needle / S, 1000), K);
  }
  // The trace (prefill in segments, then the last token alone) against one training forward over the prompt.
  const TaskSample t = make_task_sample(TaskKind::passkey, 1024, 7, filler, bytes, Phrasings::legacy);
  const int64_t needle = find_needle(t, bytes);
  const std::span<const int32_t> prompt(t.tokens.data(), size_t(t.prompt_length));
  const std::vector<LayerRetrieval> layers = probe_retrieval(model, prompt, needle / S, 300);
  ForwardCache cache;
  InferenceState state = model.new_state();
  model.forward(Tensor::from_i32(std::vector<int32_t>(prompt.begin(), prompt.end()), {1, t.prompt_length}), state,
                nullptr, &cache);
  for (const LayerRetrieval& l : layers) {
    const std::vector<HeadRetrieval> full = analyse_retrieval(cache.hsa[size_t(l.layer)], needle / S);
    for (size_t h = 0; h < full.size(); ++h) {
      SCOPED_TRACE("layer " + std::to_string(l.layer) + " head " + std::to_string(h));
      EXPECT_EQ(l.heads[h].visible, full[h].visible);
      EXPECT_EQ(l.heads[h].needle_rank, full[h].needle_rank);
      EXPECT_EQ(l.heads[h].selected, full[h].selected);
      EXPECT_NEAR(l.heads[h].needle_weight, full[h].needle_weight, 1e-4);
      EXPECT_NEAR(l.heads[h].top1_minus_top2, full[h].top1_minus_top2, 1e-3);
      EXPECT_NEAR(l.heads[h].landmark_cosine, full[h].landmark_cosine, 1e-4);
    }
  }
  ASSERT_EQ(g.cells.size(), 4u);  // layers 2 and 4, 2 heads each
  EXPECT_EQ(g.not_visible, 0);
  // Chance is K / visible = 4 / 127; the retrieving head selects the pass key's chunk every time, at rank 0-1.
  EXPECT_EQ(passkey_tiny_head_recall(g, 2, 0), 1.0);
  EXPECT_LE(g.cells[0].rank_sum / double(g.cells[0].samples), 1.0);
  EXPECT_NEAR(g.cells[0].chance_recall_sum / double(g.cells[0].samples), 4.0 / 127, 1e-9);
}

#include "eval/retrieval_probe.h"

#include "kernel/shapes.h"
#include "ops/retrieval.h"

#include <hsa/error.h>
#include <hsa/random.h>

#include <algorithm>
#include <string>

namespace hsa::eval {
namespace {

// The token of `prompt` holding byte `offset` of decode(prompt): the shortest prefix whose text reaches past it
// (prefix texts grow with the prefix, so a binary search finds it).
int64_t token_at_offset(std::span<const int32_t> prompt, size_t offset, const Tokenizer& tokenizer) {
  int64_t lo = 0, hi = static_cast<int64_t>(prompt.size()) - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (tokenizer.decode(prompt.first(static_cast<size_t>(mid + 1))).size() > offset)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t e = 0; e < n; ++e) ab += double(a[e]) * b[e], aa += double(a[e]) * a[e], bb += double(b[e]) * b[e];
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : NAN;
}

// Mean cosine of pairs of the first `visible` landmarks of head h (lm: cpu f32 [C, H, dr]).
double mean_landmark_cosine(const float* lm, int64_t heads, int64_t dr, int64_t h, int64_t visible, int64_t max_pairs) {
  if (visible < 2) return NAN;
  auto row = [&](int64_t c) { return lm + (c * heads + h) * dr; };
  double sum = 0;
  int64_t n = 0;
  auto add = [&](int64_t a, int64_t b) {
    const double c = cosine(row(a), row(b), dr);
    if (std::isfinite(c)) sum += c, ++n;
  };
  if (visible * (visible - 1) / 2 <= max_pairs) {
    for (int64_t a = 0; a < visible; ++a)
      for (int64_t b = a + 1; b < visible; ++b) add(a, b);
  } else {
    Rng rng(0x6c616e646d61726bULL + static_cast<uint64_t>(h));
    for (int64_t i = 0; i < max_pairs; ++i) {
      const int64_t a = static_cast<int64_t>(rng.below(static_cast<uint64_t>(visible)));
      const int64_t b = static_cast<int64_t>(rng.below(static_cast<uint64_t>(visible - 1)));
      add(a, b < a ? b : b + 1);  // b != a
    }
  }
  return n > 0 ? sum / static_cast<double>(n) : NAN;
}

}  // namespace

int64_t find_needle(const TaskSample& sample, const Tokenizer& tokenizer) {
  const int64_t P = sample.prompt_length;
  HSA_CHECK(P > 0 && P <= static_cast<int64_t>(sample.tokens.size()),
            "find_needle: prompt length {} outside the sample's {} tokens", P, sample.tokens.size());
  std::vector<int32_t> answer;
  for (size_t i = 0; i < sample.tokens.size(); ++i)
    if (sample.answer_mask[i]) answer.push_back(sample.tokens[i]);
  const auto prompt_begin = sample.tokens.begin(), prompt_end = sample.tokens.begin() + P;
  if (!answer.empty()) {
    const auto it = std::search(prompt_begin, prompt_end, answer.begin(), answer.end());
    if (it != prompt_end) return it - prompt_begin;
  }
  const std::string first_value = sample.answer.substr(0, sample.answer.find(", "));
  if (first_value.empty()) return -1;
  const std::span<const int32_t> prompt(sample.tokens.data(), static_cast<size_t>(P));
  const size_t offset = tokenizer.decode(prompt).find(first_value);
  return offset == std::string::npos ? -1 : token_at_offset(prompt, offset, tokenizer);
}

std::vector<HeadRetrieval> analyse_retrieval(const HsaCache& cache, int64_t needle_chunk, int64_t max_pairs) {
  HSA_CHECK(!cache.empty, "analyse_retrieval: the layer's cache is empty (no chunk existed)");
  HSA_CHECK(cache.q_ret.dim(0) == 1, "analyse_retrieval: batch {}, expected 1", cache.q_ret.dim(0));
  const int64_t n = cache.q_ret.dim(1), H = cache.q_ret.dim(2), dr = cache.q_ret.dim(3);
  const int64_t K = cache.retrieval_params.topk;
  // The last query row alone, on the host in f32 (bf16 values convert exactly).
  const Tensor q = cache.q_ret.slice(1, n - 1, n).to(Device::cpu).to(DType::f32).contiguous();
  const Tensor lm = cache.landmarks.to(Device::cpu).to(DType::f32).contiguous();
  ops::RetrievalParams p = cache.retrieval_params;
  p.q_start += n - 1;
  const int64_t C = lm.dim(1);
  const int64_t visible = visible_chunks(p.q_start, p.chunk_size, p.window, C);

  std::vector<HeadRetrieval> heads(static_cast<size_t>(H));
  for (HeadRetrieval& h : heads) h.visible = visible;
  if (visible == 0) return heads;
  // Every visible chunk, best first (softmax slot order: descending score, ties to the more recent chunk).
  p.topk = visible;
  p.weighting = ops::ChunkWeighting::softmax;
  const ops::RetrievalOut all = ops::retrieval_forward(q, lm, p);
  const std::vector<double> order = all.indices.to_vector(), scores = all.scores.to_vector();  // [H, visible]
  const Tensor sel_i = cache.retrieval.indices.slice(1, n - 1, n).to(Device::cpu).contiguous();
  const Tensor sel_w = cache.retrieval.weights.slice(1, n - 1, n).to(Device::cpu).contiguous();
  const std::vector<double> selected = sel_i.to_vector(), weights = sel_w.to_vector();  // [H, K]
  const float* lmp = lm.data<float>();
  for (int64_t h = 0; h < H; ++h) {
    HeadRetrieval& r = heads[static_cast<size_t>(h)];
    const double* o = order.data() + h * visible;
    const double* s = scores.data() + h * visible;
    r.top_chunk = static_cast<int64_t>(o[0]);
    if (needle_chunk >= 0 && needle_chunk < visible)
      r.needle_rank = std::find(o, o + visible, static_cast<double>(needle_chunk)) - o;
    for (int64_t k = 0; k < K; ++k)
      if (needle_chunk >= 0 && selected[static_cast<size_t>(h * K + k)] == static_cast<double>(needle_chunk)) {
        r.selected = true;
        r.needle_weight = weights[static_cast<size_t>(h * K + k)];
      }
    if (visible >= 2) {
      // Scores are in descending order: the median is the middle one (the mean of the middle two).
      const double median = visible % 2 ? s[visible / 2] : 0.5 * (s[visible / 2 - 1] + s[visible / 2]);
      r.top1_minus_top2 = s[0] - s[1];
      r.top1_minus_median = s[0] - median;
    }
    r.landmark_cosine = mean_landmark_cosine(lmp, H, dr, h, visible, max_pairs);
  }
  return heads;
}

std::vector<LayerRetrieval> probe_retrieval(const Model& model, std::span<const int32_t> prompt, int64_t needle_chunk,
                                            int64_t segment, const std::function<void(int64_t)>& progress) {
  HSA_CHECK(!prompt.empty(), "probe_retrieval: empty prompt");
  HSA_CHECK(segment > 0, "probe_retrieval: segment must be positive, got {}", segment);
  const ModelConfig& c = model.config();
  InferenceState state = model.new_state();
  const int64_t last = static_cast<int64_t>(prompt.size()) - 1;
  for (int64_t start = 0; start < last;) {
    const int64_t n = std::min(segment - start % segment, last - start);
    model.forward(Tensor::from_i32(std::vector<int32_t>(prompt.begin() + start, prompt.begin() + start + n), {1, n}),
                  state);
    start += n;
    if (progress) progress(start);
  }
  std::vector<HsaCache> trace;
  model.forward(Tensor::from_i32({prompt[static_cast<size_t>(last)]}, {1, 1}), state, nullptr, nullptr, &trace);
  if (progress) progress(last + 1);
  std::vector<LayerRetrieval> out;
  for (int64_t i = 0; i < c.num_layers(); ++i) {
    if (!c.is_hsa_layer(i)) continue;
    const HsaCache& layer = trace[static_cast<size_t>(i)];
    LayerRetrieval r{i, {}};
    r.heads = layer.empty ? std::vector<HeadRetrieval>(static_cast<size_t>(c.num_key_value_heads))
                          : analyse_retrieval(layer, needle_chunk);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace hsa::eval

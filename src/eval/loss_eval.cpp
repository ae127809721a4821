#include "eval/loss_eval.h"

#include "infer/session.h"
#include "ops/cross_entropy.h"

#include <hsa/error.h>

#include <algorithm>

namespace hsa::eval {

std::vector<PositionBucket> position_buckets(int64_t length) {
  HSA_CHECK(length >= 1, "position_buckets: length must be >= 1, got {}", length);
  std::vector<PositionBucket> out;
  for (int64_t begin = 0, end = kFirstBucketEnd; begin < length; begin = end, end *= 2)
    out.push_back({begin, std::min(end, length)});
  return out;
}

std::vector<int64_t> window_offsets(int64_t shard_tokens, int64_t length, int64_t samples) {
  HSA_CHECK(samples >= 1, "window_offsets: samples must be >= 1, got {}", samples);
  const int64_t last = shard_tokens - (length + 1);
  if (last < 0) return {};
  std::vector<int64_t> out;
  for (int64_t i = 0; i < samples; ++i) {
    // Evenly spread from 0 to `last`; long double keeps i * last exact for any shard size.
    const int64_t at = samples == 1 ? 0
                                    : static_cast<int64_t>(static_cast<long double>(last) * i / (samples - 1));
    if (out.empty() || out.back() != at) out.push_back(at);
  }
  return out;
}

void add_window_loss(const Model& model, std::span<const int32_t> window, int64_t segment,
                     std::vector<PositionBucket>& buckets, const std::function<void(int64_t, int64_t)>& progress) {
  HSA_CHECK(window.size() >= 2, "eval loss: a window needs at least 2 tokens, got {}", window.size());
  HSA_CHECK(segment >= 1, "eval loss: --segment must be >= 1, got {}", segment);
  const int64_t length = static_cast<int64_t>(window.size()) - 1;
  HSA_CHECK(!buckets.empty() && buckets.front().begin == 0 && buckets.back().end == length,
            "eval loss: the buckets cover [{}, {}), the window has {} positions",
            buckets.empty() ? 0 : buckets.front().begin, buckets.empty() ? 0 : buckets.back().end, length);
  constexpr int32_t kIgnore = -100;
  Session session(model);
  for (int64_t start = 0; start < length; start += segment) {
    const int64_t n = std::min(segment, length - start);
    const Tensor logits = session.feed_on_device(window.subspan(static_cast<size_t>(start), static_cast<size_t>(n)));
    // One cross-entropy per bucket the segment overlaps: positions outside the bucket are ignored, so the
    // bucket gets its exact sum (mean x count) without the per-token losses ever leaving the device.
    for (PositionBucket& b : buckets) {
      const int64_t lo = std::max(b.begin, start), hi = std::min(b.end, start + n);
      if (lo >= hi) continue;
      std::vector<int32_t> targets(static_cast<size_t>(n), kIgnore);
      for (int64_t p = lo; p < hi; ++p) targets[static_cast<size_t>(p - start)] = window[static_cast<size_t>(p + 1)];
      const Tensor t = Tensor::from_i32(targets, {n}).to(logits.device());
      const ops::CrossEntropyOut ce = ops::cross_entropy_forward(logits, t, kIgnore);
      HSA_CHECK(ce.count == hi - lo, "eval loss: cross entropy counted {} targets, expected {}", ce.count, hi - lo);
      b.loss_sum += ce.loss * static_cast<double>(ce.count);
      b.tokens += ce.count;
    }
    if (progress) progress(start + n, length);
  }
}

double mean_loss(const std::vector<PositionBucket>& buckets) {
  double sum = 0;
  for (const PositionBucket& b : buckets) sum += b.loss_sum;
  const int64_t n = total_tokens(buckets);
  return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

int64_t total_tokens(const std::vector<PositionBucket>& buckets) {
  int64_t n = 0;
  for (const PositionBucket& b : buckets) n += b.tokens;
  return n;
}

}  // namespace hsa::eval

// Held-out next-token loss by context length and by token position: how well a model predicts natural text
// as the context it has read grows (does the loss keep falling past the sliding window, into the chunks that
// only retrieval reaches?). The logic behind `hsa eval loss`.
//
// A window of length L is L + 1 consecutive tokens of the evaluation shard (concatenated documents): the
// model reads window[0, L) in segments through an inference Session, and the logits at position p predict
// window[p + 1], so every window gives exactly L predictions. Position p's loss goes to the bucket holding p:
// [0, 1K), [1K, 2K), [2K, 4K), ... doubling up to L (the last bucket ends at L). Only one segment's logits
// exist at a time; the losses are computed where the model runs (ops::cross_entropy_forward).
#pragma once
#include "model/model.h"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace hsa::eval {

constexpr int64_t kFirstBucketEnd = 1024;

struct PositionBucket {
  int64_t begin = 0, end = 0;  // positions [begin, end)
  double loss_sum = 0;         // nats, summed over every prediction in the bucket
  int64_t tokens = 0;          // predictions counted
  double mean() const { return tokens > 0 ? loss_sum / static_cast<double>(tokens) : 0.0; }
};

// The buckets of a length-L window as above, empty sums; L >= 1 (a window shorter than 1K has one bucket).
std::vector<PositionBucket> position_buckets(int64_t length);

// Start offsets of `samples` windows of `length` + 1 tokens in a shard of `shard_tokens` tokens: spread
// evenly from 0 to the last possible start, both ends included (0 only, for one sample), duplicates
// removed. Empty when the shard is shorter than length + 1 tokens.
std::vector<int64_t> window_offsets(int64_t shard_tokens, int64_t length, int64_t samples);

// Adds the L = window.size() - 1 next-token losses of one window to `buckets` (from position_buckets(L)),
// reading it in segments of at most `segment` tokens with a fresh Session. progress(done, L) after each
// segment.
void add_window_loss(const Model& model, std::span<const int32_t> window, int64_t segment,
                     std::vector<PositionBucket>& buckets,
                     const std::function<void(int64_t, int64_t)>& progress = {});

// Sum over buckets of loss_sum / of tokens: the mean over every prediction.
double mean_loss(const std::vector<PositionBucket>& buckets);
int64_t total_tokens(const std::vector<PositionBucket>& buckets);

}  // namespace hsa::eval

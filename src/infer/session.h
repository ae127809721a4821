// An inference session: feeds tokens to a model incrementally (prefill in bounded segments, then one token at
// a time), keeping only SWA windows and the chunk memory between calls.
//
// Prefix reuse (docs/serve.md): the chunk memory is append-only, so the state after a prefix of p tokens, p a
// multiple of the chunk size, is the chunk memory cut back to p / chunk_size chunks plus the SWA windows at p.
// With a snapshot interval, the session keeps those windows (shared tensors, no copies) at every multiple of the
// interval it passes, so a later prompt sharing a prefix can resume from the largest such position.
#pragma once
#include "model/model.h"

#include <functional>
#include <map>
#include <span>
#include <vector>

namespace hsa {

// Everything needed to continue after `tokens`, or to resume from one of the positions in `windows`.
// Copies share tensors (see ChunkMemory): copying one costs no tensor data.
struct SavedState {
  std::vector<int32_t> tokens;                        // every token fed, in order
  InferenceState state;                               // after all of them
  Tensor logits;                                      // [V] on the cpu: the prediction after the last token
  std::map<int64_t, std::vector<KvHistory>> windows;  // chunk-aligned position -> each layer's SWA window there
  size_t bytes() const;                               // tensor bytes held (shared buffers counted in full)
  // Positions it can resume from: every key of `windows` that is <= limit, and tokens.size() itself.
  int64_t best_resume_point(int64_t limit) const;
};

class Session {
 public:
  // `snapshot_interval` (0: none) must be a multiple of the model's chunk size.
  explicit Session(const Model& model, int64_t snapshot_interval = 0);

  // Feeds tokens in segments that end at multiples of `segment` positions (at most `segment` tokens each, bounded
  // activation memory; the same cut whatever position a prefill starts from, so a resumed prefill computes what a
  // full one does); returns the logits [V] after the last one. `progress(done, total)` runs after each segment.
  Tensor prefill(std::span<const int32_t> tokens, int64_t segment,
                 const std::function<void(int64_t, int64_t)>& progress = {});
  // Feeds one token; returns the logits [V] for the next position.
  Tensor step(int32_t token);
  // Logits [n, V] (on the cpu, whatever the model's device) for every token fed.
  Tensor feed(std::span<const int32_t> tokens);
  // The same logits left where the model runs, for work done on the device (next-token losses).
  Tensor feed_on_device(std::span<const int32_t> tokens);

  // Puts the chunk memory's pages in tiers (model/memory_tiers.h); only at position 0. Kept across reset().
  void set_memory_tiers(const MemoryTiers& tiers);
  TierUsage memory_usage() const { return state_.memory.memory.usage(); }

  int64_t position() const { return state_.position; }
  size_t state_bytes() const { return state_.bytes(); }
  const std::vector<int32_t>& tokens() const { return tokens_; }

  // Keeps the SWA windows at the current position as a resume point (as the snapshot interval does), when it is a
  // multiple of the chunk size (no pending rows); returns whether it did. Costs no copy.
  bool keep_windows();

  // The current state, with `logits` (the last prediction) and the windows kept so far.
  SavedState save(const Tensor& logits) const;
  // Continues from `saved` cut back to `position` (tokens.size(), or a key of its windows); returns the logits
  // after it when position is tokens.size() (an undefined tensor otherwise: feed at least one token next).
  Tensor restore(const SavedState& saved, int64_t position);
  // A fresh start (position 0).
  void reset();

 private:
  const Model& model_;
  int64_t snapshot_interval_;
  InferenceState state_;
  MemoryTiers tiers_;
  std::vector<int32_t> tokens_;
  std::map<int64_t, std::vector<KvHistory>> windows_;
  void retier();  // moves a restored chunk memory into this session's tiers when it has others
};

}  // namespace hsa

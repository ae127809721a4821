// An inference session: feeds tokens to a model incrementally (prefill in bounded segments, then one token at
// a time), keeping only SWA windows and the chunk memory between calls.
#pragma once
#include "model/model.h"

#include <functional>
#include <span>

namespace hsa {

class Session {
 public:
  explicit Session(const Model& model);

  // Feeds tokens in segments of at most `segment` tokens (bounded activation memory); returns the logits [V]
  // after the last one. `progress(done, total)` is called after each segment.
  Tensor prefill(std::span<const int32_t> tokens, int64_t segment,
                 const std::function<void(int64_t, int64_t)>& progress = {});
  // Feeds one token; returns the logits [V] for the next position.
  Tensor step(int32_t token);
  // Logits [n, V] (on the cpu, whatever the model's device) for every token fed.
  Tensor feed(std::span<const int32_t> tokens);
  // The same logits left where the model runs, for work done on the device (next-token losses).
  Tensor feed_on_device(std::span<const int32_t> tokens);

  int64_t position() const { return state_.position; }
  size_t state_bytes() const { return state_.bytes(); }

 private:
  const Model& model_;
  InferenceState state_;
};

}  // namespace hsa

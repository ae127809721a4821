// States kept after requests, so a later prompt sharing a prefix resumes instead of prefilling it again
// (docs/serve.md). Bounded by a byte budget; the least recently used states go first. Thread-safe.
#pragma once
#include "infer/session.h"

#include <list>
#include <memory>
#include <mutex>
#include <span>

namespace hsa {

struct CacheMatch {
  std::shared_ptr<const SavedState> state;  // null: nothing usable
  int64_t position = 0;                     // where to resume (Session::restore)
};

class PrefixCache {
 public:
  explicit PrefixCache(size_t budget_bytes) : budget_(budget_bytes) {}

  // The state that lets `prompt` skip the most tokens, and the position to resume it from: the longest common
  // prefix when the cached state ends inside the prompt, else the largest window snapshot below it. At most
  // prompt.size() - 1 unless the state holds exactly the prompt (its logits are then the answer).
  CacheMatch find(std::span<const int32_t> prompt);
  // Keeps `state` (most recently used), dropping states it makes redundant (it extends their tokens and can
  // resume exactly where they ended), then the least recently used while over budget.
  void insert(std::shared_ptr<const SavedState> state);

  size_t bytes() const;
  size_t size() const;

 private:
  size_t total_bytes() const;  // with mutex_ held
  mutable std::mutex mutex_;
  size_t budget_;
  std::list<std::shared_ptr<const SavedState>> lru_;  // front: most recently used
};

}  // namespace hsa

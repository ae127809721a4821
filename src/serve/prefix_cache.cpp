#include "serve/prefix_cache.h"

#include <algorithm>
#include <map>

namespace hsa {

namespace {
int64_t common_prefix(std::span<const int32_t> a, const std::vector<int32_t>& b) {
  size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return static_cast<int64_t>(i);
}
}  // namespace

CacheMatch PrefixCache::find(std::span<const int32_t> prompt) {
  std::lock_guard lock(mutex_);
  int64_t n = static_cast<int64_t>(prompt.size());
  CacheMatch best;
  auto best_it = lru_.end();
  for (auto it = lru_.begin(); it != lru_.end(); ++it) {
    const SavedState& s = **it;
    int64_t m = common_prefix(prompt, s.tokens), t = static_cast<int64_t>(s.tokens.size());
    int64_t p = (m == t && t == n && s.logits.defined()) ? n : s.best_resume_point(std::min(m, n - 1));
    if (p > best.position) best = CacheMatch{*it, p}, best_it = it;
  }
  if (best_it != lru_.end()) lru_.splice(lru_.begin(), lru_, best_it);
  return best;
}

void PrefixCache::insert(std::shared_ptr<const SavedState> state) {
  std::lock_guard lock(mutex_);
  // A state the new one extends adds nothing when the new one can resume exactly where it ended.
  lru_.remove_if([&](const std::shared_ptr<const SavedState>& s) {
    int64_t t = static_cast<int64_t>(s->tokens.size());
    return s->tokens.size() <= state->tokens.size() &&
           std::equal(s->tokens.begin(), s->tokens.end(), state->tokens.begin()) &&
           (t == static_cast<int64_t>(state->tokens.size()) || state->windows.count(t) > 0);
  });
  lru_.push_front(std::move(state));
  while (!lru_.empty() && total_bytes() > budget_) lru_.pop_back();
}

size_t PrefixCache::total_bytes() const {
  // States resumed from one another share chunk-memory buffers: count each buffer once, at its largest.
  std::map<const void*, size_t> buffers;
  size_t total = 0;
  for (const auto& s : lru_) {
    const ChunkMemory& m = s->state.memory.memory;
    size_t memory = m.bytes();
    total += s->bytes() - memory;
    if (m.num_chunks() > 0) {
      size_t& b = buffers[m.mem_k().raw_data()];
      b = std::max(b, memory);
    }
  }
  for (const auto& [buffer, bytes] : buffers) total += bytes;
  return total;
}

size_t PrefixCache::bytes() const {
  std::lock_guard lock(mutex_);
  return total_bytes();
}

size_t PrefixCache::size() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace hsa

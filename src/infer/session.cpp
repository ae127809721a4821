#include "infer/session.h"

#include <algorithm>
#include <vector>

namespace hsa {

size_t SavedState::bytes() const {
  size_t total = state.bytes() + (logits.defined() ? logits.nbytes() : 0);
  for (const auto& [position, layers] : windows)
    for (const KvHistory& h : layers) total += h.bytes();
  return total + tokens.size() * sizeof(int32_t);
}

int64_t SavedState::best_resume_point(int64_t limit) const {
  int64_t n = static_cast<int64_t>(tokens.size());
  if (n <= limit) return n;
  auto it = windows.upper_bound(limit);
  return it == windows.begin() ? 0 : std::prev(it)->first;
}

Session::Session(const Model& model, int64_t snapshot_interval)
    : model_(model), snapshot_interval_(snapshot_interval), state_(model.new_state()) {
  HSA_CHECK(snapshot_interval >= 0 && snapshot_interval % model.config().chunk_size == 0,
            "Session: snapshot interval {} is not a multiple of the chunk size {}", snapshot_interval,
            model.config().chunk_size);
}

void Session::set_memory_tiers(const MemoryTiers& tiers) {
  HSA_CHECK(state_.position == 0, "Session::set_memory_tiers: the session is at position {}, not 0", state_.position);
  tiers_ = tiers;
  state_.memory.memory.set_tiers(tiers);
}

Tensor Session::feed_on_device(std::span<const int32_t> tokens) {
  HSA_CHECK(!tokens.empty(), "Session: no tokens to feed");
  Tensor ids = Tensor::from_i32(std::vector<int32_t>(tokens.begin(), tokens.end()),
                                {1, static_cast<int64_t>(tokens.size())});
  int64_t before = state_.position;
  Tensor logits = model_.forward(ids, state_);
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  // Windows are replaced, never written in place, by the forward: keeping them costs no copy.
  if (snapshot_interval_ > 0 && state_.position / snapshot_interval_ > before / snapshot_interval_) {
    HSA_CHECK(state_.position % snapshot_interval_ == 0,
              "Session: a feed from {} to {} crosses a snapshot position without stopping there", before,
              state_.position);
    windows_[state_.position] = state_.kv;
  }
  return logits.select(0, 0);
}

Tensor Session::feed(std::span<const int32_t> tokens) {
  return feed_on_device(tokens).to(Device::cpu);  // sampling runs on the host
}

Tensor Session::prefill(std::span<const int32_t> tokens, int64_t segment,
                        const std::function<void(int64_t, int64_t)>& progress) {
  HSA_CHECK(!tokens.empty(), "Session::prefill: empty prompt");
  HSA_CHECK(segment > 0, "Session::prefill: segment size must be positive, got {}", segment);
  HSA_CHECK(snapshot_interval_ == 0 || snapshot_interval_ % segment == 0,
            "Session::prefill: segment {} does not divide the snapshot interval {}", segment, snapshot_interval_);
  int64_t total = static_cast<int64_t>(tokens.size());
  Tensor last;
  for (int64_t start = 0; start < total;) {
    int64_t n = std::min(segment - state_.position % segment, total - start);
    Tensor logits = feed(tokens.subspan(start, n));
    last = logits.select(0, n - 1).contiguous();
    start += n;
    if (progress) progress(start, total);
  }
  return last;
}

Tensor Session::step(int32_t token) { return feed(std::span<const int32_t>(&token, 1)).select(0, 0).contiguous(); }

bool Session::keep_windows() {
  if (state_.position == 0 || state_.position % model_.config().chunk_size != 0) return false;
  windows_[state_.position] = state_.kv;
  return true;
}

SavedState Session::save(const Tensor& logits) const { return SavedState{tokens_, state_, logits, windows_}; }

Tensor Session::restore(const SavedState& saved, int64_t position) {
  int64_t n = static_cast<int64_t>(saved.tokens.size());
  HSA_CHECK(saved.state.position == n, "Session::restore: state at position {} but {} tokens recorded",
            saved.state.position, n);
  windows_.clear();
  for (const auto& [p, layers] : saved.windows)
    if (p <= position) windows_[p] = layers;
  tokens_.assign(saved.tokens.begin(), saved.tokens.begin() + position);
  if (position == n) {
    state_ = saved.state;
    retier();
    return saved.logits;
  }
  auto it = saved.windows.find(position);
  HSA_CHECK(it != saved.windows.end() || position == 0,
            "Session::restore: no snapshot of the windows at position {} (state holds {} tokens)", position, n);
  int64_t S = model_.config().chunk_size;
  HSA_CHECK(position % S == 0, "Session::restore: position {} is not a multiple of the chunk size {}", position, S);
  state_ = model_.new_state();
  state_.memory.memory.set_tiers(tiers_);
  if (position > 0) {
    state_.memory.memory = saved.state.memory.memory;  // shares the buffers: the first chunks never change
    state_.memory.memory.truncate(position / S);
    retier();
    state_.kv = it->second;
    state_.position = position;
  }
  return Tensor();
}

void Session::retier() {
  ChunkMemory& m = state_.memory.memory;
  const MemoryTiers& have = m.tiers();
  const bool elsewhere = m.num_chunks() > 0 && m.landmarks().device() != model_.device();
  if (!elsewhere && have.enabled() == tiers_.enabled() && have.device_budget == tiers_.device_budget &&
      have.host_budget == tiers_.host_budget && have.disk_dir == tiers_.disk_dir)
    return;
  // E.g. a state loaded from a file (possibly into host memory): its pages go to this session's tiers, where the
  // model runs. A slice of chunks at a time, so the copy needs at most one slice beyond the tiers' own memory.
  ChunkMemory moved;
  moved.set_tiers(tiers_);
  const int64_t chunks = m.num_chunks(), slice = std::max<int64_t>(tiers_.staging_pages, 1);
  if (chunks > 0) {
    const Tensor k = m.mem_k(), v = m.mem_v(), lmk = m.landmarks();
    for (int64_t c = 0; c < chunks; c += slice) {
      const int64_t end = std::min(chunks, c + slice);
      moved.append(k.slice(1, c, end).to(model_.device()), v.slice(1, c, end).to(model_.device()),
                   lmk.slice(1, c, end).to(model_.device()));
    }
  }
  m = std::move(moved);
}

void Session::reset() {
  state_ = model_.new_state();
  state_.memory.memory.set_tiers(tiers_);
  tokens_.clear();
  windows_.clear();
}

}  // namespace hsa

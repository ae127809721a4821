#include "serve/engine.h"

#include "util/progress.h"

#include <algorithm>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace hsa {

size_t complete_utf8_prefix(std::string_view text) {
  size_t n = text.size();
  // Look back over at most 3 continuation bytes for a lead byte whose sequence is not complete yet.
  for (size_t back = 1; back <= std::min<size_t>(4, n); ++back) {
    auto c = static_cast<unsigned char>(text[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return len > back ? n - back : n;
  }
  return n;
}

Engine::Engine(const Model& model, const Tokenizer& tokenizer, ModelFingerprint fingerprint, EngineOptions options)
    : model_(model), tokenizer_(tokenizer), fingerprint_(std::move(fingerprint)), options_(options),
      cache_(options.cache_bytes) {
  HSA_CHECK(options.parallel >= 1, "serve: --parallel must be at least 1, got {}", options.parallel);
  HSA_CHECK(options.snapshot_interval > 0 && options.snapshot_interval % model.config().chunk_size == 0,
            "serve: --snapshot-interval {} is not a positive multiple of the chunk size {}", options.snapshot_interval,
            model.config().chunk_size);
  HSA_CHECK(options.segment > 0 && options.snapshot_interval % options.segment == 0,
            "serve: --segment {} does not divide --snapshot-interval {}", options.segment, options.snapshot_interval);
  for (int i = 0; i < options.parallel; ++i) slots_.push_back(std::make_unique<Slot>());
  for (auto& slot : slots_) slot->thread = std::thread([this, s = slot.get()] { slot_loop(*s); });
  janitor_ = std::thread([this] { janitor_loop(); });
}

void Engine::janitor_loop() {
  std::unique_lock lock(queue_mutex_);
  while (!stopping_) {
    janitor_cv_.wait_for(lock, std::chrono::seconds(1));
    if (busy_ == 0 && queue_.empty() && finished_since_trim_ > 0) {
      finished_since_trim_ = 0;
#ifdef __GLIBC__
      // Idle: hand freed activations, states and response buffers back to the system, so that a load peak does
      // not stay resident.
      malloc_trim(0);
#endif
    }
  }
}

Engine::~Engine() { shutdown(0); }

std::shared_ptr<Job> Engine::submit(GenerationRequest request, GenerationCallbacks callbacks, bool* shutting_down) {
  auto job = std::make_shared<Job>();
  job->request = std::move(request);
  job->callbacks = std::move(callbacks);
  job->submitted = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(queue_mutex_);
    if (shutting_down) *shutting_down = stopping_;
    int waiting = static_cast<int>(queue_.size()) + busy_ - static_cast<int>(slots_.size());
    if (stopping_ || waiting >= options_.queue) {
      ++metrics_.rejected;
      return nullptr;
    }
    queue_.push_back(job);
  }
  ++metrics_.requests;
  queue_cv_.notify_one();
  return job;
}

size_t Engine::queue_length() const {
  std::lock_guard lock(queue_mutex_);
  return queue_.size();
}

void Engine::shutdown(double grace_s) {
  std::deque<std::shared_ptr<Job>> dropped;
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_ && slots_.empty()) return;
    stopping_ = true;
    dropped.swap(queue_);
  }
  queue_cv_.notify_all();
  janitor_cv_.notify_all();
  for (auto& job : dropped) {
    GenerationResult r;
    r.finish_reason = "shutdown";
    r.error = "the server is shutting down";
    if (job->callbacks.done) job->callbacks.done(r);
  }
  auto t0 = std::chrono::steady_clock::now();
  while (busy_ > 0 && seconds_since(t0) < grace_s) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  {
    std::lock_guard lock(queue_mutex_);
    for (auto& job : running_) job->cancel();
  }
  for (auto& slot : slots_)
    if (slot->thread.joinable()) slot->thread.join();
  if (janitor_.joinable()) janitor_.join();
}

void Engine::lock_compute() {
  std::unique_lock lock(compute_mutex_);
  uint64_t ticket = next_ticket_++;
  if (serving_ == ticket) return;  // uncontended: the common case of one request decoding
  ++compute_waiters_;
  compute_cv_.wait(lock, [&] { return serving_ == ticket; });
  --compute_waiters_;
}

void Engine::unlock_compute() {
  bool waiters;
  {
    std::lock_guard lock(compute_mutex_);
    ++serving_;
    waiters = compute_waiters_ > 0;
  }
  if (waiters) compute_cv_.notify_all();  // no wake-up (a system call) per decode step when nobody waits
}

void Engine::slot_loop(Slot& slot) {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(queue_mutex_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      job = queue_.front();
      queue_.pop_front();
      running_.push_back(job);
      ++busy_;
    }
    run(slot, *job);
    {
      std::lock_guard lock(queue_mutex_);
      running_.erase(std::find(running_.begin(), running_.end(), job));
      --busy_;
      ++finished_since_trim_;
    }
  }
}

namespace {
// Where the earliest stop string starts in `text` (npos: none).
size_t find_stop(const std::string& text, const std::vector<std::string>& stops, size_t from) {
  size_t best = std::string::npos;
  for (const std::string& s : stops) {
    size_t at = text.find(s, from > s.size() ? from - s.size() : 0);
    if (at != std::string::npos) best = std::min(best, at);
  }
  return best;
}
}  // namespace

void Engine::run(Slot& slot, Job& job) {
  const GenerationRequest& req = job.request;
  GenerationResult result;
  result.prompt_tokens = static_cast<int64_t>(req.prompt.size());
  result.queue_s = seconds_since(job.submitted);
  auto deadline = job.submitted + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      std::chrono::duration<double>(options_.timeout_s));
  // Why the job must stop now ("" to go on).
  auto interrupted = [&]() -> std::string {
    if (job.cancelled()) return "cancelled";
    if (std::chrono::steady_clock::now() > deadline) return "timeout";
    return "";
  };
  Session session(model_, options_.snapshot_interval);
  Tensor logits;
  try {
    int64_t n = result.prompt_tokens;
    CacheMatch match = req.use_cache ? cache_.find(req.prompt) : CacheMatch{};
    if (match.state) {
      lock_compute();
      logits = session.restore(*match.state, match.position);
      unlock_compute();
      result.cached_tokens = match.position;
      ++metrics_.cache_hits;
    }
    if (job.callbacks.progress) job.callbacks.progress(result.cached_tokens, n);
    auto t0 = std::chrono::steady_clock::now();
    std::span<const int32_t> prompt(req.prompt);
    while (session.position() < n && (result.finish_reason = interrupted()).empty()) {
      int64_t pos = session.position();
      int64_t len = std::min(options_.segment - pos % options_.segment, n - pos);
      lock_compute();
      try {
        logits = session.prefill(prompt.subspan(pos, len), options_.segment);
      } catch (...) {
        unlock_compute();
        throw;
      }
      unlock_compute();
      metrics_.prefill_tokens += len;
      // Within the prompt's last snapshot interval, keep the windows at every segment boundary too: a follow-up
      // that changes only the end of this prompt (another question about the same document) then resumes at most
      // one segment before it diverges, instead of up to an interval.
      if (n - (pos + len) < options_.snapshot_interval) session.keep_windows();
      if (job.callbacks.progress) job.callbacks.progress(pos + len, n);
    }
    result.prefill_s = seconds_since(t0);
    // The state at the end of the prompt: the next request with this prompt (or one continuing it) starts here.
    if (result.finish_reason.empty() && n > result.cached_tokens)
      cache_.insert(std::make_shared<const SavedState>(session.save(logits)));
    metrics_.prefill_us += static_cast<int64_t>(result.prefill_s * 1e6);
    metrics_.prompt_tokens += n;
    metrics_.cached_tokens += result.cached_tokens;

    auto t1 = std::chrono::steady_clock::now();
    Rng rng(req.seed);
    std::string text;
    size_t emitted = 0, max_stop = 0;
    for (const std::string& s : req.stop) max_stop = std::max(max_stop, s.size());
    while (result.finish_reason.empty()) {
      if (!(result.finish_reason = interrupted()).empty()) break;
      if (result.completion_tokens >= req.max_tokens) {
        result.finish_reason = "length";
        break;
      }
      int32_t next = sample_token(logits, req.sampling, rng);
      if (next == tokenizer_.eos_id()) {
        result.finish_reason = "stop";
        break;
      }
      ++result.completion_tokens;
      size_t before = text.size();
      text += tokenizer_.decode(std::span<const int32_t>(&next, 1));
      size_t stop_at = find_stop(text, req.stop, before);
      if (stop_at != std::string::npos) {
        text.resize(stop_at);
        result.finish_reason = "stop";
        break;
      }
      // Emit what can no longer become part of a stop string, in whole characters (only the text not emitted yet
      // is looked at: the work per token does not grow with the completion).
      if (job.callbacks.text) {
        size_t safe = text.size() - std::min(text.size() - emitted, max_stop > 0 ? max_stop - 1 : 0);
        safe = emitted + complete_utf8_prefix(std::string_view(text).substr(emitted, safe - emitted));
        if (safe > emitted) job.callbacks.text(text.substr(emitted, safe - emitted));
        emitted = safe;
      }
      if (result.completion_tokens >= req.max_tokens) {  // no need to feed the last token
        result.finish_reason = "length";
        break;
      }
      lock_compute();
      try {
        logits = session.step(next);
      } catch (...) {
        unlock_compute();
        throw;
      }
      unlock_compute();
    }
    if (result.finish_reason == "stop" || result.finish_reason == "length")
      if (text.size() > emitted && job.callbacks.text) job.callbacks.text(text.substr(emitted));
    result.text = std::move(text);
    result.decode_s = seconds_since(t1);
    metrics_.decode_us += static_cast<int64_t>(result.decode_s * 1e6);
    metrics_.generated_tokens += result.completion_tokens;
    if (session.position() > 0 && logits.defined()) {
      auto saved = std::make_shared<const SavedState>(session.save(logits));
      cache_.insert(saved);
      std::lock_guard lock(slot.mutex);
      slot.last = saved;
    }
  } catch (const std::exception& e) {
    result.finish_reason = "error";
    result.error = e.what();
  }
  if (result.finish_reason == "cancelled") ++metrics_.cancelled;
  if (result.finish_reason == "timeout") ++metrics_.timeouts;
  if (result.finish_reason == "error") ++metrics_.errors;
  ++metrics_.finished;
  if (job.callbacks.done) job.callbacks.done(result);
}

size_t Engine::save_slot(int slot, const std::string& path) {
  HSA_CHECK(slot >= 0 && slot < slots(), "serve: no slot {} (there are {})", slot, slots());
  std::shared_ptr<const SavedState> last;
  {
    std::lock_guard lock(slots_[slot]->mutex);
    last = slots_[slot]->last;
  }
  HSA_CHECK(last, "serve: slot {} holds no state yet (it has not finished a request)", slot);
  save_state_file(path, *last, fingerprint_);
  return last->tokens.size();
}

size_t Engine::restore_slot(int slot, const std::string& path) {
  HSA_CHECK(slot >= 0 && slot < slots(), "serve: no slot {} (there are {})", slot, slots());
  // The memory plan sized each session for max_positions: a longer state would not fit beside the others, and no
  // prompt continuing it would be accepted. Checked from the header, before its tensors are read.
  const int64_t positions = state_file_positions(path);
  HSA_CHECK(options_.max_positions <= 0 || positions <= options_.max_positions,
            "serve: '{}' holds {} positions, more than the {} a session may hold here (the memory plan, or "
            "--max-prompt-tokens)",
            path, positions, options_.max_positions);
  auto loaded = std::make_shared<const SavedState>(load_state_file(path, fingerprint_, model_));
  cache_.insert(loaded);
  std::lock_guard lock(slots_[slot]->mutex);
  slots_[slot]->last = loaded;
  return loaded->tokens.size();
}

}  // namespace hsa

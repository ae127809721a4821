// The server's generation engine, independent of HTTP: `parallel` slots (worker threads) take requests from a
// bounded queue and run them, interleaved one prefill segment or decode step at a time under a fair compute
// lock (one model, one device: the ops are not run concurrently), resuming from the prefix cache when a prompt
// shares a prefix with an earlier state. Cancellation, time limits and shutdown are checked between segments
// and steps. See docs/serve.md.
#pragma once
#include "infer/sampler.h"
#include "infer/session.h"
#include "infer/state_file.h"
#include "serve/prefix_cache.h"
#include "text/tokenizer.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace hsa {

struct EngineOptions {
  int parallel = 1;                  // slots
  int queue = 64;                    // requests waiting beyond the slots
  int64_t segment = 1024;            // prefill segment (tokens); divides snapshot_interval
  int64_t snapshot_interval = 4096;  // SWA windows kept every this many positions (multiple of the chunk size)
  size_t cache_bytes = size_t(1) << 30;
  double timeout_s = 600;            // per request, from submission
  int64_t max_positions = 0;         // the memory plan's positions per session (0: unlimited); restore_slot
                                     // refuses a state file holding more
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 16;
  SamplingOptions sampling;
  uint64_t seed = 0;
  std::vector<std::string> stop;  // generation ends before the first occurrence of any
  bool use_cache = true;          // false: prefill the whole prompt (its state is still cached afterwards)
};

struct GenerationResult {
  std::string text;
  std::string finish_reason;  // "stop" | "length" | "cancelled" | "timeout" | "shutdown" | "error"
  std::string error;          // with "error"
  int64_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
  double queue_s = 0, prefill_s = 0, decode_s = 0;
};

// What a job reports while it runs (called on the slot's thread; keep them short).
struct GenerationCallbacks {
  std::function<void(int64_t done, int64_t total)> progress;  // prompt tokens processed (cached ones included)
  std::function<void(const std::string& text)> text;          // new text: whole UTF-8 characters, stops held back
  std::function<void(const GenerationResult&)> done;          // exactly once
};

class Job {
 public:
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  friend class Engine;
  GenerationRequest request;
  GenerationCallbacks callbacks;
  std::chrono::steady_clock::time_point submitted;
  std::atomic<bool> cancelled_{false};
};

struct EngineMetrics {
  std::atomic<int64_t> requests{0}, finished{0}, rejected{0}, cancelled{0}, timeouts{0}, errors{0};
  std::atomic<int64_t> prompt_tokens{0}, cached_tokens{0}, prefill_tokens{0}, generated_tokens{0}, cache_hits{0};
  std::atomic<int64_t> prefill_us{0}, decode_us{0};
};

class Engine {
 public:
  Engine(const Model& model, const Tokenizer& tokenizer, ModelFingerprint fingerprint, EngineOptions options);
  ~Engine();  // shutdown(0)

  // Queues a request; null when the queue is full or the engine is shutting down (`busy` says which).
  std::shared_ptr<Job> submit(GenerationRequest request, GenerationCallbacks callbacks, bool* shutting_down = nullptr);
  // Stops taking requests, cancels queued ones, lets running ones finish for up to `grace_s`, then cancels them
  // and joins the slots.
  void shutdown(double grace_s);

  // Slot states on disk (state_file.h): the state a slot ended its last request with.
  size_t save_slot(int slot, const std::string& path);        // returns tokens saved
  size_t restore_slot(int slot, const std::string& path);     // also offered to the prefix cache; a state beyond
                                                              // options().max_positions is refused unread
  int slots() const { return static_cast<int>(slots_.size()); }

  const EngineMetrics& metrics() const { return metrics_; }
  size_t queue_length() const;
  int busy_slots() const { return busy_; }
  const PrefixCache& cache() const { return cache_; }
  const EngineOptions& options() const { return options_; }

 private:
  struct Slot {
    std::thread thread;
    std::mutex mutex;  // guards last
    std::shared_ptr<const SavedState> last;
  };
  void slot_loop(Slot& slot);
  void janitor_loop();  // returns memory to the system when idle
  void run(Slot& slot, Job& job);
  // Fair (first come, first served) lock around model calls.
  void lock_compute();
  void unlock_compute();

  const Model& model_;
  const Tokenizer& tokenizer_;
  ModelFingerprint fingerprint_;
  EngineOptions options_;
  PrefixCache cache_;
  EngineMetrics metrics_;
  std::vector<std::unique_ptr<Slot>> slots_;
  mutable std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::shared_ptr<Job>> running_;
  bool stopping_ = false;
  int64_t finished_since_trim_ = 0;  // guarded by queue_mutex_
  std::thread janitor_;
  std::condition_variable janitor_cv_;  // its own: a notify meant for a slot must never wake it instead
  std::atomic<int> busy_{0};
  std::mutex compute_mutex_;
  std::condition_variable compute_cv_;
  uint64_t next_ticket_ = 0, serving_ = 0;
  int compute_waiters_ = 0;  // threads blocked in lock_compute (guarded by compute_mutex_)
};

// The longest prefix of `text` that is whole UTF-8 characters (a multi-byte character may arrive token by token).
size_t complete_utf8_prefix(std::string_view text);

}  // namespace hsa

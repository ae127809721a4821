// A training run directory and the rules that keep it safe:
//   checkpoints/<name>/   complete checkpoints (config.json, model.safetensors, optimizer.safetensors)
//   latest                one line, "checkpoints/<name>": the newest published checkpoint
//   train_log.jsonl, train_options.json, train.lock
// `latest` is read by every command that takes a run directory, and the trainer prunes old checkpoints, so what
// it names is checked strictly: a typo or a hostile edit must never make a reader load, or the trainer delete,
// anything outside the run's own checkpoints/.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace hsa {

// True for "checkpoints/<name>" where <name> is one path component of letters, digits, '.', '_' and '-' (not
// "." or "..", not ending in ".tmp"): the only form `latest` may take.
bool is_checkpoint_name(std::string_view name);

// The checkpoint directory that run_dir/latest names, after checking that `latest` holds one valid name (see
// is_checkpoint_name; a trailing newline is allowed) and that it is a directory, not a symlink, whose real path
// lies in the run's own checkpoints/. Errors name the file and show its content with control characters
// escaped (a stray '\r' is visible).
std::string latest_checkpoint_dir(const std::string& run_dir);

// What a training run writes into its directory that is already there (latest, the log, the options, any
// checkpoint): a fresh run must not start over these without --force.
std::vector<std::string> existing_run_outputs(const std::string& run_dir);

// An exclusive advisory lock (flock) on run_dir/train.lock, held for the object's lifetime, so that two trainers
// never write one run. Taken without waiting: when another process holds it, throws hsa::Error naming the run
// and the holder's pid. The directory must exist.
class RunLock {
 public:
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// `text` with control and non-ASCII bytes shown as \r, \n, \t or \xNN, for messages that quote file contents.
std::string escape_for_message(std::string_view text);

}  // namespace hsa

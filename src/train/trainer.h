// `hsa train`: AdamW with warmup + cosine, gradient clipping and accumulation, periodic eval, a JSONL log,
// checkpoints every N steps (each a complete directory, published atomically) and exact resume.
#pragma once
#include "train/optimizer.h"

#include <string>
#include <vector>

namespace hsa {

struct TrainOptions {
  std::string config_path;           // model config (JSON); ignored when resuming
  std::string out_dir;               // run directory: checkpoints/, latest, train_log.jsonl
  bool resume = false;               // continue from out_dir/latest
  bool force = false;                // start a fresh run over an existing one in out_dir (its log and options
                                     // are replaced; its checkpoints are left, never pruned by this run)
  std::string init_from;             // start from these weights (a checkpoint or run dir; fresh optimizer):
                                     // the next stage of a curriculum. Its config is used; config_path must be empty
  std::vector<std::string> reinit;   // with init_from: parameters (names or parts of names) drawn afresh
                                     // (train/reinit.h)
  std::vector<std::string> tasks;    // synthetic tasks to train on (text/tasks.h)
  std::string data_path;             // and/or a token shard of natural text (language modelling)
  std::string filler_path;           // text corpus for task haystacks (built-in generator when empty)
  std::string tokenizer_path;        // a tokenizer.json (what --data was built with): sets the config's
                                     // `tokenizer` to its file name and is copied into every checkpoint.
                                     // Empty: the config's own (a file beside the config, or "bytes")
  bool answer_only_loss = false;     // tasks: learn only the answer tokens
  // The mixture (train/batches.h): with both data_path and tasks, each row is a task sample with probability
  // task_share (< 0: 0.2), else a window of the shard. Task rows learn every token, the answer's weighted
  // answer_weight times (unless answer_only_loss); their phrasings come from the `phrasings` pool.
  double task_share = -1;
  double answer_weight = 5.0;
  double answer_share = 0.0;         // > 0: the answers' mean is this share of the loss (replaces answer_weight)
  std::string phrasings = "train";   // train (held-out eval pool never seen) or legacy (the byte-level tasks)
  std::string eval_data_path;        // token shard for eval_lm_loss (default: data_path with another seed)
  int64_t batch = 8;
  int64_t seq_len = 256;
  int64_t steps = 100;
  int64_t grad_accum = 1;
  ScheduleConfig schedule;
  double weight_decay = 0.1;
  double clip = 1.0;
  int64_t eval_every = 50;
  int64_t eval_batches = 2;
  int64_t save_every = 50;
  uint64_t seed = 1;
  int64_t stop_after = 0;  // > 0: stop (as if interrupted) after this step, for testing resume
  // Steps whose loss or gradient norm is not finite are skipped (no update) and counted; one more than this
  // stops the run with an error, without saving: a non-finite checkpoint is never published.
  int64_t max_nonfinite_skips = 0;
  bool quiet = false;
  // Where and in what precision to run (not part of the saved recipe: a run may resume on another device).
  // Parameters and optimizer state stay f32 (the master copy); `dtype` is what the model computes in, and
  // the gradients' dtype: empty = f32 on the cpu, bf16 on cuda.
  std::string device = "cpu";
  std::string dtype;
  // Data parallelism: one process per device, started by torchrun, srun or mpirun (dist/launch_env.h reads
  // their variables). `batch` is per process, so the global batch is batch x processes; each process draws its
  // own rows of it (train/batches.h RankRows), gradients are averaged over processes (dist/grad_sync.h), and
  // rank 0 alone writes the log and the checkpoints. `dist` picks the backend (dist/communicator.h): auto, none,
  // tcp (cpu) or nccl (cuda; also at one process, to run the real path). Not part of the saved recipe, except
  // the number of processes: a resume must use as many.
  std::string dist = "auto";
  double dist_timeout_s = 300;  // how long the rendezvous waits for every process to arrive
  bool zero1 = false;           // shard the optimizer state over the processes (dist/sharded_adamw.h); the
                                // checkpoints are the same as without, so a run may switch on resume
};

struct TrainResult {
  std::vector<double> losses;  // per step, including the steps before a resume (from the log)
  int64_t final_step = 0;
  double tokens_per_second = 0;
  std::string checkpoint;  // the last checkpoint directory written
  int rank = 0;            // this process's rank in a data-parallel launch (only rank 0 writes)
};

// Takes the run directory's lock first (a second trainer on the same --out fails at once), refuses to start a
// fresh run over an existing one unless `force`, and prunes only checkpoints this run wrote or resumed from.
TrainResult train(const TrainOptions& options);

// Every option's range, with the flag named: throws hsa::InvalidArgument (the CLI exits 2). train() calls it.
void validate_train_options(const TrainOptions& options);

// Resolves a model path: a checkpoint directory, or a run directory whose `latest` file names one (checked by
// latest_checkpoint_dir in train/run_dir.h: only a checkpoint inside the run's own checkpoints/).
std::string resolve_checkpoint_dir(const std::string& path);

}  // namespace hsa

// Deterministic, resumable training batches.
//   inputs          i32 [B, L]  token ids
//   targets         i32 [B, L]  next token for each input position; -100 = ignored by the loss
//   answer_targets  i32 [B, L]  (sources with task rows only) the targets that are answer tokens of a task row,
//                               -100 elsewhere: the loss weighs them answer_weight times (train/train_step.h)
// Row i of batch n depends only on (seed, n, i), so position() is just the number of batches drawn and
// seek(p) is O(1): after seek(p), next() returns exactly what a fresh source returns as its (p+1)-th batch.
#pragma once
#include "text/filler.h"
#include "text/tasks.h"
#include "text/tokenizer.h"
#include "text/token_shard.h"

#include <hsa/tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace hsa {

constexpr int32_t kIgnoreIndex = -100;

struct Batch {
  Tensor inputs;          // i32 [B, L]
  Tensor targets;         // i32 [B, L], kIgnoreIndex = ignored
  Tensor answer_targets;  // i32 [B, L] or undefined (no task rows possible)
  double answer_weight = 1.0;
  double answer_share = 0.0;  // > 0: the answers' mean takes this share of the loss (train/train_step.h)
  int64_t task_rows = 0;  // rows of this batch that are task samples (the rest are shard windows)
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual Batch next() = 0;
  virtual uint64_t position() const = 0;  // batches drawn so far
  virtual void seek(uint64_t position) = 0;
};

// Random windows of seq_len + 1 tokens from the shard: inputs = first L, targets = last L.
// The shard must hold at least seq_len + 1 tokens. The source keeps its own handle on the mapping.
std::unique_ptr<BatchSource> make_shard_batches(const TokenShard& shard, int64_t batch, int64_t seq_len,
                                                uint64_t seed);

// Each row is one byte-level task sample of seq_len + 1 tokens, its kind drawn from `kinds` by the row's seed.
// targets are the next tokens; with answer_only_loss only the answer tokens count (everything else is
// kIgnoreIndex), otherwise every position does. The filler is copied into the source.
std::unique_ptr<BatchSource> make_task_batches(std::vector<TaskKind> kinds, int64_t batch, int64_t seq_len,
                                               uint64_t seed, const FillerText& filler, bool answer_only_loss);

// How the task rows of a mixture are made.
struct TaskRows {
  std::vector<TaskKind> kinds;                 // drawn uniformly per row
  FillerText filler;                           // haystack text
  std::shared_ptr<const Tokenizer> tokenizer;  // null: byte-level
  Phrasings phrasings = Phrasings::legacy;     // which phrasing pool the needles and questions come from
  bool answer_only_loss = false;               // only the answer tokens are targets
  double answer_weight = 1.0;                  // else every token is, the answer's weighted this much
  // ... or, when > 0, the answer tokens' mean takes this share of the loss, whatever the batch's count of them. A
  // 4K task row holds about 10 answer tokens among 4,096, so with half the rows tasks and a weight of 5 the answers
  // are under 1% of the loss: too little for retrieval to learn beside language modelling (docs/training-lm.md).
  double answer_share = 0.0;
};

// Data parallelism: which rows of each global batch this process draws. A global batch has batch x world_size
// rows; this rank draws rows rank, rank + world_size, rank + 2 world_size, ... (each from its own row seed), so
// the ranks together draw exactly what one process with batch x world_size rows draws, and position() (global
// batches drawn) is the same on every rank: resume stays exact.
struct RankRows {
  int64_t rank = 0;
  int64_t world_size = 1;
};

// The language-model + task mixture: each row is, with probability task_share (drawn from the row's seed), a
// task sample (tasks), else a random window of seq_len + 1 tokens of `shard` with every next token a target.
// task_share 0 gives exactly make_shard_batches' batches, task_share 1 (shard may then be null) exactly the
// task rows alone (make_task_batches' for byte-level legacy rows).
// `batch` is this rank's share of the rows (see RankRows).
std::unique_ptr<BatchSource> make_mixture_batches(const TokenShard* shard, TaskRows tasks, double task_share,
                                                  int64_t batch, int64_t seq_len, uint64_t seed,
                                                  RankRows rank_rows = {});

// Wraps `source` so that the batch after the one returned is built on a background thread while the caller
// trains on this one (task rows tokenise text: seconds per step otherwise on the critical path). Returns the
// same batches in the same order; position() counts batches returned, seek() drops the prefetched one.
// Whatever the source uses (its tokenizer) is then used from that thread: give other sources their own.
std::unique_ptr<BatchSource> prefetch_batches(std::unique_ptr<BatchSource> source);

// The seed of row `row` of batch `batch_index`: a hash of the three, so rows are independent streams.
uint64_t batch_row_seed(uint64_t seed, uint64_t batch_index, uint64_t row);

}  // namespace hsa

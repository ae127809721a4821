#include "train/batches.h"

#include <hsa/error.h>
#include <hsa/random.h>

#include <future>
#include <optional>
#include <utility>

namespace hsa {
namespace {

uint64_t mix64(uint64_t z) {  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void check_dims(const char* what, int64_t batch, int64_t seq_len) {
  HSA_CHECK(batch >= 1, "{}: batch must be >= 1, got {}", what, batch);
  HSA_CHECK(seq_len >= 1, "{}: seq_len must be >= 1, got {}", what, seq_len);
}

// Rows are shard windows or task samples (see make_mixture_batches). Each row draws, from its own seed: the coin
// (only when both kinds are possible), then either the window start or the task kind and the sample seed.
class MixtureBatches final : public BatchSource {
 public:
  MixtureBatches(std::optional<TokenShard> shard, std::optional<TaskRows> tasks, double task_share, int64_t batch,
                 int64_t seq_len, uint64_t seed, RankRows rank_rows = {})
      : shard_(std::move(shard)),
        tasks_(std::move(tasks)),
        task_share_(task_share),
        batch_(batch),
        seq_len_(seq_len),
        seed_(seed),
        rank_rows_(rank_rows) {}

  Batch next() override {
    Batch b;
    b.inputs = Tensor::empty({batch_, seq_len_}, DType::i32);
    b.targets = Tensor::empty({batch_, seq_len_}, DType::i32);
    int32_t* inputs = b.inputs.data<int32_t>();
    int32_t* targets = b.targets.data<int32_t>();
    int32_t* answers = nullptr;
    if (tasks_) {
      b.answer_targets = Tensor::empty({batch_, seq_len_}, DType::i32);
      answers = b.answer_targets.data<int32_t>();
      b.answer_weight = tasks_->answer_only_loss ? 1.0 : tasks_->answer_weight;
      b.answer_share = tasks_->answer_only_loss ? 0.0 : tasks_->answer_share;
    }
    std::vector<int32_t> window(static_cast<size_t>(seq_len_ + 1));
    for (int64_t i = 0; i < batch_; ++i) {
      const int64_t global_row = rank_rows_.rank + i * rank_rows_.world_size;
      Rng rng(batch_row_seed(seed_, position_, static_cast<uint64_t>(global_row)));
      const bool task_row = !shard_ || (tasks_ && (task_share_ >= 1.0 || (task_share_ > 0.0 && rng.uniform() < task_share_)));
      int32_t* in = inputs + i * seq_len_;
      int32_t* tg = targets + i * seq_len_;
      if (!task_row) {
        const uint64_t starts = static_cast<uint64_t>(shard_->size() - seq_len_);  // windows [s, s + L], s < starts
        shard_->read(static_cast<int64_t>(rng.below(starts)), seq_len_ + 1, window.data());
        std::copy(window.begin(), window.end() - 1, in);
        std::copy(window.begin() + 1, window.end(), tg);
        if (answers) std::fill(answers + i * seq_len_, answers + (i + 1) * seq_len_, kIgnoreIndex);
        continue;
      }
      ++b.task_rows;
      const TaskKind kind = tasks_->kinds[rng.below(tasks_->kinds.size())];
      const uint64_t sample_seed = rng.next_u64();
      const TaskSample s = tasks_->tokenizer
                               ? make_task_sample(kind, seq_len_ + 1, sample_seed, tasks_->filler, *tasks_->tokenizer,
                                                  tasks_->phrasings)
                               : make_task_sample(kind, seq_len_ + 1, sample_seed, tasks_->filler, ByteTokenizer(),
                                                  tasks_->phrasings);
      for (int64_t t = 0; t < seq_len_; ++t) {
        const bool answer = s.answer_mask[t + 1] != 0;
        in[t] = s.tokens[t];
        tg[t] = !tasks_->answer_only_loss || answer ? s.tokens[t + 1] : kIgnoreIndex;
        answers[i * seq_len_ + t] = answer ? s.tokens[t + 1] : kIgnoreIndex;
      }
    }
    ++position_;
    return b;
  }
  uint64_t position() const override { return position_; }
  void seek(uint64_t position) override { position_ = position; }

 private:
  std::optional<TokenShard> shard_;
  std::optional<TaskRows> tasks_;
  double task_share_;
  int64_t batch_, seq_len_;
  uint64_t seed_;
  RankRows rank_rows_;
  uint64_t position_ = 0;
};

class PrefetchBatches final : public BatchSource {
 public:
  explicit PrefetchBatches(std::unique_ptr<BatchSource> source)
      : source_(std::move(source)), position_(source_->position()) {}
  ~PrefetchBatches() override {
    if (pending_.valid()) pending_.wait();
  }

  Batch next() override {
    if (!pending_.valid()) start();
    Batch b = pending_.get();  // rethrows what the background next() threw
    ++position_;
    start();
    return b;
  }
  uint64_t position() const override { return position_; }
  void seek(uint64_t position) override {
    if (pending_.valid()) pending_.wait();
    pending_ = {};
    source_->seek(position);
    position_ = position;
  }

 private:
  void start() {
    pending_ = std::async(std::launch::async, [source = source_.get()] { return source->next(); });
  }
  std::unique_ptr<BatchSource> source_;
  uint64_t position_;
  std::future<Batch> pending_;
};

}  // namespace

std::unique_ptr<BatchSource> prefetch_batches(std::unique_ptr<BatchSource> source) {
  return std::make_unique<PrefetchBatches>(std::move(source));
}

uint64_t batch_row_seed(uint64_t seed, uint64_t batch_index, uint64_t row) {
  return mix64(mix64(mix64(seed ^ 0x6873612d64617461ull) + batch_index) + row);
}

std::unique_ptr<BatchSource> make_shard_batches(const TokenShard& shard, int64_t batch, int64_t seq_len,
                                                uint64_t seed) {
  check_dims("make_shard_batches", batch, seq_len);
  HSA_CHECK(shard.size() >= seq_len + 1,
            "make_shard_batches: shard {} holds {} tokens, fewer than seq_len + 1 = {}", shard.path(), shard.size(),
            seq_len + 1);
  return std::make_unique<MixtureBatches>(shard, std::nullopt, 0.0, batch, seq_len, seed);
}

std::unique_ptr<BatchSource> make_task_batches(std::vector<TaskKind> kinds, int64_t batch, int64_t seq_len,
                                               uint64_t seed, const FillerText& filler, bool answer_only_loss) {
  check_dims("make_task_batches", batch, seq_len);
  HSA_CHECK(!kinds.empty(), "make_task_batches: no task kinds given");
  TaskRows rows{std::move(kinds), filler, nullptr, Phrasings::legacy, answer_only_loss, 1.0};
  return std::make_unique<MixtureBatches>(std::nullopt, std::move(rows), 1.0, batch, seq_len, seed);
}

std::unique_ptr<BatchSource> make_mixture_batches(const TokenShard* shard, TaskRows tasks, double task_share,
                                                  int64_t batch, int64_t seq_len, uint64_t seed,
                                                  RankRows rank_rows) {
  check_dims("make_mixture_batches", batch, seq_len);
  HSA_CHECK(rank_rows.world_size >= 1 && rank_rows.rank >= 0 && rank_rows.rank < rank_rows.world_size,
            "make_mixture_batches: rank {} outside a world of {}", rank_rows.rank, rank_rows.world_size);
  HSA_CHECK(task_share >= 0.0 && task_share <= 1.0, "make_mixture_batches: task_share must be in [0, 1], got {}",
            task_share);
  HSA_CHECK(shard || task_share == 1.0, "make_mixture_batches: a task_share of {} needs a token shard", task_share);
  HSA_CHECK(task_share == 0.0 || !tasks.kinds.empty(), "make_mixture_batches: task_share {} but no task kinds",
            task_share);
  HSA_CHECK(tasks.answer_weight > 0.0, "make_mixture_batches: answer_weight must be > 0, got {}", tasks.answer_weight);
  if (shard)
    HSA_CHECK(shard->size() >= seq_len + 1,
              "make_mixture_batches: shard {} holds {} tokens, fewer than seq_len + 1 = {}", shard->path(),
              shard->size(), seq_len + 1);
  // A length too short for a task would otherwise fail hours into a run, at the first row that needs it:
  // try a few samples of every kind now (the sizes of a kind's fixed text vary little between seeds).
  if (task_share > 0.0) {
    const ByteTokenizer bytes;
    const Tokenizer& tok = tasks.tokenizer ? *tasks.tokenizer : bytes;
    for (TaskKind kind : tasks.kinds)
      for (uint64_t probe = 0; probe < 16; ++probe) {
        try {
          make_task_sample(kind, seq_len + 1, mix64(seed + probe), tasks.filler, tok, tasks.phrasings);
        } catch (const Error& e) {
          fail("make_mixture_batches: seq_len {} is too short for task {}: {}", seq_len, task_kind_name(kind),
               e.what());
        }
      }
  }
  std::optional<TokenShard> own_shard;
  if (shard) own_shard = *shard;
  std::optional<TaskRows> own_tasks;
  if (task_share > 0.0) own_tasks = std::move(tasks);
  return std::make_unique<MixtureBatches>(std::move(own_shard), std::move(own_tasks), task_share, batch, seq_len, seed,
                                          rank_rows);
}

}  // namespace hsa

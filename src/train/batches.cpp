#include "train/batches.h"

#include <hsa/error.h>
#include <hsa/random.h>

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

class ShardBatches final : public BatchSource {
 public:
  ShardBatches(TokenShard shard, int64_t batch, int64_t seq_len, uint64_t seed)
      : shard_(std::move(shard)), batch_(batch), seq_len_(seq_len), seed_(seed) {}

  Batch next() override {
    Batch b{Tensor::empty({batch_, seq_len_}, DType::i32), Tensor::empty({batch_, seq_len_}, DType::i32)};
    int32_t* inputs = b.inputs.data<int32_t>();
    int32_t* targets = b.targets.data<int32_t>();
    std::vector<int32_t> window(static_cast<size_t>(seq_len_ + 1));
    const uint64_t starts = static_cast<uint64_t>(shard_.size() - seq_len_);  // windows [s, s + L] for s < starts
    for (int64_t i = 0; i < batch_; ++i) {
      Rng rng(batch_row_seed(seed_, position_, static_cast<uint64_t>(i)));
      shard_.read(static_cast<int64_t>(rng.below(starts)), seq_len_ + 1, window.data());
      std::copy(window.begin(), window.end() - 1, inputs + i * seq_len_);
      std::copy(window.begin() + 1, window.end(), targets + i * seq_len_);
    }
    ++position_;
    return b;
  }
  uint64_t position() const override { return position_; }
  void seek(uint64_t position) override { position_ = position; }

 private:
  TokenShard shard_;
  int64_t batch_, seq_len_;
  uint64_t seed_;
  uint64_t position_ = 0;
};

class TaskBatches final : public BatchSource {
 public:
  TaskBatches(std::vector<TaskKind> kinds, int64_t batch, int64_t seq_len, uint64_t seed, FillerText filler,
              bool answer_only_loss)
      : kinds_(std::move(kinds)),
        batch_(batch),
        seq_len_(seq_len),
        seed_(seed),
        filler_(std::move(filler)),
        answer_only_loss_(answer_only_loss) {}

  Batch next() override {
    Batch b{Tensor::empty({batch_, seq_len_}, DType::i32), Tensor::empty({batch_, seq_len_}, DType::i32)};
    int32_t* inputs = b.inputs.data<int32_t>();
    int32_t* targets = b.targets.data<int32_t>();
    for (int64_t i = 0; i < batch_; ++i) {
      Rng rng(batch_row_seed(seed_, position_, static_cast<uint64_t>(i)));
      TaskKind kind = kinds_[rng.below(kinds_.size())];
      TaskSample s = make_task_sample(kind, seq_len_ + 1, rng.next_u64(), filler_);
      for (int64_t t = 0; t < seq_len_; ++t) {
        inputs[i * seq_len_ + t] = s.tokens[t];
        bool counts = !answer_only_loss_ || s.answer_mask[t + 1] != 0;
        targets[i * seq_len_ + t] = counts ? s.tokens[t + 1] : kIgnoreIndex;
      }
    }
    ++position_;
    return b;
  }
  uint64_t position() const override { return position_; }
  void seek(uint64_t position) override { position_ = position; }

 private:
  std::vector<TaskKind> kinds_;
  int64_t batch_, seq_len_;
  uint64_t seed_;
  FillerText filler_;
  bool answer_only_loss_;
  uint64_t position_ = 0;
};

}  // namespace

uint64_t batch_row_seed(uint64_t seed, uint64_t batch_index, uint64_t row) {
  return mix64(mix64(mix64(seed ^ 0x6873612d64617461ull) + batch_index) + row);
}

std::unique_ptr<BatchSource> make_shard_batches(const TokenShard& shard, int64_t batch, int64_t seq_len,
                                                uint64_t seed) {
  check_dims("make_shard_batches", batch, seq_len);
  HSA_CHECK(shard.size() >= seq_len + 1,
            "make_shard_batches: shard {} holds {} tokens, fewer than seq_len + 1 = {}", shard.path(), shard.size(),
            seq_len + 1);
  return std::make_unique<ShardBatches>(shard, batch, seq_len, seed);
}

std::unique_ptr<BatchSource> make_task_batches(std::vector<TaskKind> kinds, int64_t batch, int64_t seq_len,
                                               uint64_t seed, const FillerText& filler, bool answer_only_loss) {
  check_dims("make_task_batches", batch, seq_len);
  HSA_CHECK(!kinds.empty(), "make_task_batches: no task kinds given");
  return std::make_unique<TaskBatches>(std::move(kinds), batch, seq_len, seed, filler, answer_only_loss);
}

}  // namespace hsa

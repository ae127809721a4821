#include "train/batches.h"

#include <hsa/error.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>

using namespace hsa;

namespace {

std::vector<int32_t> values(const Tensor& t) {
  const int32_t* p = t.data<int32_t>();
  return std::vector<int32_t>(p, p + t.numel());
}

void expect_same(const Batch& a, const Batch& b) {
  EXPECT_EQ(values(a.inputs), values(b.inputs));
  EXPECT_EQ(values(a.targets), values(b.targets));
}

struct TempShard {
  std::string path;
  TokenShard shard;
  explicit TempShard(int64_t n) {
    path = (std::filesystem::temp_directory_path() / ("hsa_batches_test_" + std::to_string(::getpid()) + ".bin"))
               .string();
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) tokens[i] = static_cast<int32_t>((i * 7919) % 1000);
    write_token_shard(path, tokens);
    shard = TokenShard::open(path);
  }
  ~TempShard() { std::remove(path.c_str()); }
};

}  // namespace

TEST(ShardBatches, ShapesShiftAndSeek) {
  TempShard temp(5000);
  const int64_t B = 3, L = 16;
  auto fresh = make_shard_batches(temp.shard, B, L, 11);
  std::vector<Batch> reference;
  for (int i = 0; i < 6; ++i) reference.push_back(fresh->next());
  EXPECT_EQ(fresh->position(), 6u);
  for (const Batch& b : reference) {
    EXPECT_EQ(b.inputs.shape(), (Shape{B, L}));
    EXPECT_EQ(b.targets.shape(), (Shape{B, L}));
    EXPECT_EQ(b.inputs.dtype(), DType::i32);
    std::vector<int32_t> in = values(b.inputs), tg = values(b.targets);
    for (int64_t r = 0; r < B; ++r)
      for (int64_t t = 0; t + 1 < L; ++t) EXPECT_EQ(tg[r * L + t], in[r * L + t + 1]);
    // Each row is a contiguous window of the shard: the token after inputs[r, t] is targets[r, t].
    for (int64_t r = 0; r < B; ++r) {
      int64_t start = -1;
      for (int64_t s = 0; s + L < temp.shard.size() && start < 0; ++s)
        if (temp.shard[s] == in[r * L] && temp.shard[s + 1] == in[r * L + 1] && temp.shard[s + 2] == in[r * L + 2])
          start = s;
      ASSERT_GE(start, 0);
      EXPECT_EQ(tg[r * L + L - 1], temp.shard[start + L]);
    }
  }
  EXPECT_NE(values(reference[0].inputs), values(reference[1].inputs));
  for (uint64_t p : {4u, 0u, 2u, 5u}) {
    auto src = make_shard_batches(temp.shard, B, L, 11);
    src->next();  // state before the seek must not matter
    src->seek(p);
    EXPECT_EQ(src->position(), p);
    expect_same(src->next(), reference[p]);
    EXPECT_EQ(src->position(), p + 1);
  }
  auto other = make_shard_batches(temp.shard, B, L, 12);
  EXPECT_NE(values(other->next().inputs), values(reference[0].inputs));
}

TEST(ShardBatches, ShardTooSmallIsAnError) {
  TempShard temp(10);
  EXPECT_THROW(make_shard_batches(temp.shard, 1, 10, 0), Error);
  auto ok = make_shard_batches(temp.shard, 2, 9, 0);  // exactly one window
  Batch b = ok->next();
  EXPECT_EQ(values(b.inputs)[0], temp.shard[0]);
  EXPECT_THROW(make_shard_batches(temp.shard, 0, 4, 0), Error);
}

TEST(TaskBatches, TargetsShiftedAndAnswerOnlyMask) {
  FillerText filler;
  const int64_t B = 4, L = 300;
  std::vector<TaskKind> kinds = legacy_task_kinds();
  auto full = make_task_batches(kinds, B, L, 5, filler, /*answer_only_loss=*/false);
  auto answer_only = make_task_batches(kinds, B, L, 5, filler, /*answer_only_loss=*/true);
  std::set<int64_t> answer_lengths;
  for (int n = 0; n < 3; ++n) {
    Batch a = full->next(), b = answer_only->next();
    EXPECT_EQ(values(a.inputs), values(b.inputs));
    std::vector<int32_t> in = values(a.inputs), tg = values(a.targets), masked = values(b.targets);
    for (int64_t r = 0; r < B; ++r) {
      EXPECT_EQ(in[r * L], 256);  // bos
      for (int64_t t = 0; t + 1 < L; ++t) EXPECT_EQ(tg[r * L + t], in[r * L + t + 1]);
      // Answer-only targets: a contiguous run of digits at the end, equal to the full targets there.
      int64_t counted = 0;
      for (int64_t t = 0; t < L; ++t) {
        int32_t m = masked[r * L + t];
        if (m == kIgnoreIndex) {
          EXPECT_EQ(counted, 0) << "ignored position after the answer started";
          continue;
        }
        ++counted;
        EXPECT_EQ(m, tg[r * L + t]);
        EXPECT_TRUE(m >= '0' && m <= '9') << m;
      }
      EXPECT_EQ(masked[r * L + L - 1], tg[r * L + L - 1]);
      answer_lengths.insert(counted);
    }
  }
  EXPECT_TRUE(answer_lengths.count(5) || answer_lengths.count(7));
  EXPECT_GE(answer_lengths.size(), 2u) << "expected a mix of task kinds (5- and 7-digit answers)";
}

TEST(TaskBatches, SeekReproducesBatches) {
  FillerText filler;
  const int64_t B = 2, L = 256;
  auto fresh = make_task_batches({TaskKind::passkey, TaskKind::variable_tracking}, B, L, 9, filler, true);
  std::vector<Batch> reference;
  for (int i = 0; i < 4; ++i) reference.push_back(fresh->next());
  for (uint64_t p : {3u, 1u, 0u}) {
    auto src = make_task_batches({TaskKind::passkey, TaskKind::variable_tracking}, B, L, 9, filler, true);
    src->seek(p);
    expect_same(src->next(), reference[p]);
    EXPECT_EQ(src->position(), p + 1);
  }
  EXPECT_NE(values(reference[0].inputs), values(reference[1].inputs));
  EXPECT_THROW(make_task_batches({}, B, L, 9, filler, true), Error);
  auto too_short = make_task_batches({TaskKind::multikey_niah}, 1, 64, 9, filler, true);
  EXPECT_THROW(too_short->next(), Error);
}

namespace {

TaskRows pooled_rows() {
  TaskRows rows;
  rows.kinds = all_task_kinds();
  rows.phrasings = Phrasings::train;
  rows.answer_weight = 5.0;
  return rows;
}

// The test shard's tokens run up to 999; a byte-level task row has none above the byte tokenizer's 260.
bool is_task_row(const std::vector<int32_t>& in, int64_t r, int64_t L) {
  for (int64_t t = 0; t < L; ++t)
    if (in[r * L + t] >= 260) return false;
  return true;
}

}  // namespace

TEST(MixtureBatches, DeterministicAndSeekable) {
  TempShard temp(20000);
  const int64_t B = 4, L = 400;
  auto fresh = make_mixture_batches(&temp.shard, pooled_rows(), 0.5, B, L, 21);
  std::vector<Batch> reference;
  for (int i = 0; i < 5; ++i) reference.push_back(fresh->next());
  for (uint64_t p : {4u, 2u, 0u}) {
    auto src = make_mixture_batches(&temp.shard, pooled_rows(), 0.5, B, L, 21);
    src->seek(p);
    Batch b = src->next();
    expect_same(b, reference[p]);
    EXPECT_EQ(values(b.answer_targets), values(reference[p].answer_targets));
    EXPECT_EQ(b.task_rows, reference[p].task_rows);
  }
  auto other = make_mixture_batches(&temp.shard, pooled_rows(), 0.5, B, L, 22);
  EXPECT_NE(values(other->next().inputs), values(reference[0].inputs));
}

TEST(MixtureBatches, RowsAreWindowsOrTasksWithWeightedAnswers) {
  TempShard temp(20000);
  const int64_t B = 8, L = 400;
  auto src = make_mixture_batches(&temp.shard, pooled_rows(), 0.5, B, L, 3);
  int64_t task_rows = 0, lm_rows = 0;
  for (int n = 0; n < 4; ++n) {
    Batch b = src->next();
    EXPECT_EQ(b.answer_weight, 5.0);
    ASSERT_TRUE(b.answer_targets.defined());
    std::vector<int32_t> in = values(b.inputs), tg = values(b.targets), ans = values(b.answer_targets);
    int64_t counted_tasks = 0;
    for (int64_t r = 0; r < B; ++r) {
      for (int64_t t = 0; t + 1 < L; ++t) EXPECT_EQ(tg[r * L + t], in[r * L + t + 1]);  // every token learnt
      int64_t answers = 0;
      for (int64_t t = 0; t < L; ++t)
        if (ans[r * L + t] != kIgnoreIndex) {
          EXPECT_EQ(ans[r * L + t], tg[r * L + t]);
          ++answers;
        }
      if (is_task_row(in, r, L)) {
        ++counted_tasks;
        EXPECT_GT(answers, 0) << "task row without answer targets";
      } else {
        EXPECT_EQ(answers, 0) << "shard window with answer targets";
        ++lm_rows;
      }
    }
    EXPECT_EQ(counted_tasks, b.task_rows);
    task_rows += counted_tasks;
  }
  EXPECT_GT(task_rows, 0);
  EXPECT_GT(lm_rows, 0);
}

TEST(MixtureBatches, TaskShareWithinTolerance) {
  TempShard temp(5000);
  TaskRows rows;
  rows.kinds = {TaskKind::passkey};
  rows.phrasings = Phrasings::train;
  for (double share : {0.1, 0.25}) {
    auto src = make_mixture_batches(&temp.shard, rows, share, 16, 160, 7);
    int64_t tasks = 0, total = 0;
    for (int n = 0; n < 60; ++n) {
      tasks += src->next().task_rows;
      total += 16;
    }
    // 960 rows: the binomial standard deviation is at most 0.014; allow 4 of them.
    EXPECT_NEAR(double(tasks) / double(total), share, 0.056) << share;
  }
}

TEST(MixtureBatches, ExtremeSharesEqualTheSingleSources) {
  TempShard temp(5000);
  const int64_t B = 3, L = 300;
  auto lm = make_shard_batches(temp.shard, B, L, 4);
  auto mixed_lm = make_mixture_batches(&temp.shard, pooled_rows(), 0.0, B, L, 4);
  FillerText filler;
  auto tasks = make_task_batches(legacy_task_kinds(), B, L, 4, filler, true);
  TaskRows legacy{legacy_task_kinds(), filler, nullptr, Phrasings::legacy, true, 1.0};
  auto mixed_tasks = make_mixture_batches(nullptr, legacy, 1.0, B, L, 4);
  for (int n = 0; n < 3; ++n) {
    expect_same(lm->next(), mixed_lm->next());
    expect_same(tasks->next(), mixed_tasks->next());
  }
  EXPECT_THROW(make_mixture_batches(nullptr, pooled_rows(), 0.5, B, L, 4), Error);
  EXPECT_THROW(make_mixture_batches(&temp.shard, pooled_rows(), 1.5, B, L, 4), Error);
  EXPECT_THROW(make_mixture_batches(&temp.shard, TaskRows{}, 0.5, B, L, 4), Error);
}

TEST(PrefetchBatches, SameBatchesSamePositionsAndSeek) {
  TempShard temp(20000);
  const int64_t B = 3, L = 300;
  auto plain = make_mixture_batches(&temp.shard, pooled_rows(), 0.5, B, L, 13);
  auto prefetched = prefetch_batches(make_mixture_batches(&temp.shard, pooled_rows(), 0.5, B, L, 13));
  std::vector<Batch> reference;
  for (int i = 0; i < 4; ++i) {
    reference.push_back(plain->next());
    Batch b = prefetched->next();
    expect_same(b, reference.back());
    EXPECT_EQ(values(b.answer_targets), values(reference.back().answer_targets));
    EXPECT_EQ(prefetched->position(), uint64_t(i + 1));
  }
  prefetched->seek(1);
  EXPECT_EQ(prefetched->position(), 1u);
  expect_same(prefetched->next(), reference[1]);
  expect_same(prefetched->next(), reference[2]);
  // An error in the background surfaces in next().
  FillerText filler;
  auto failing = prefetch_batches(make_task_batches({TaskKind::multikey_niah}, 1, 64, 9, filler, true));
  EXPECT_THROW(failing->next(), Error);
}

// Data parallelism: ranks 0..W-1 with B rows each draw, interleaved, exactly the rows of one source with W x B
// rows, batch after batch and after a seek; task counts add up.
TEST(MixtureBatches, RankRowsPartitionTheGlobalBatch) {
  TempShard temp(20000);
  const int64_t B = 2, W = 3, L = 400;
  auto whole = make_mixture_batches(&temp.shard, pooled_rows(), 0.5, B * W, L, 9);
  std::vector<std::unique_ptr<BatchSource>> ranks;
  for (int64_t r = 0; r < W; ++r)
    ranks.push_back(make_mixture_batches(&temp.shard, pooled_rows(), 0.5, B, L, 9, RankRows{r, W}));
  ranks[1]->seek(0);
  for (int n = 0; n < 3; ++n) {
    if (n == 2) {  // resume at global batch 5 on every rank and in the single source
      whole->seek(5);
      for (auto& s : ranks) s->seek(5);
    }
    Batch g = whole->next();
    std::vector<int32_t> gin = values(g.inputs), gans = values(g.answer_targets);
    int64_t task_rows = 0;
    for (int64_t r = 0; r < W; ++r) {
      Batch b = ranks[size_t(r)]->next();
      ASSERT_EQ(b.inputs.shape(), (Shape{B, L}));
      std::vector<int32_t> in = values(b.inputs), ans = values(b.answer_targets);
      for (int64_t i = 0; i < B; ++i) {
        const int64_t row = r + i * W;
        EXPECT_TRUE(std::equal(in.begin() + i * L, in.begin() + (i + 1) * L, gin.begin() + row * L))
            << "batch " << n << " rank " << r << " row " << i;
        EXPECT_TRUE(std::equal(ans.begin() + i * L, ans.begin() + (i + 1) * L, gans.begin() + row * L));
      }
      task_rows += b.task_rows;
      EXPECT_EQ(ranks[size_t(r)]->position(), whole->position());
    }
    EXPECT_EQ(task_rows, g.task_rows);
  }
  EXPECT_THROW(make_mixture_batches(&temp.shard, pooled_rows(), 0.5, B, L, 9, RankRows{3, 3}), Error);
}

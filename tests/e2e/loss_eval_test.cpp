// hsa eval loss: position buckets, window offsets, the segmented loss against a direct full-forward
// cross-entropy on a tiny random model, and the report files.
#include "common/random_tokens.h"
#include "eval/loss_eval.h"
#include "eval/loss_report.h"
#include "model/model.h"
#include "model/param_spec.h"

#include "common/temp_dir.h"

#include <hsa/random.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

using namespace hsa;
using namespace hsa::eval;
using hsa::testing::TempDir;

using hsa::testing::random_tokens;

namespace {

Model micro_model(uint64_t seed) {
  ModelConfig config = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  return Model(config, init_parameters(config, seed, DType::f32));
}

// Per-position next-token losses from one full forward over window[0, L), in double.
std::vector<double> direct_losses(const Model& model, const std::vector<int32_t>& window) {
  const int64_t L = static_cast<int64_t>(window.size()) - 1, V = model.config().vocab_size;
  InferenceState state = model.new_state();
  const Tensor logits =
      model.forward(Tensor::from_i32(std::vector<int32_t>(window.begin(), window.end() - 1), {1, L}), state)
          .select(0, 0)
          .contiguous();
  const std::vector<double> v = logits.to_vector();
  std::vector<double> out(static_cast<size_t>(L));
  for (int64_t p = 0; p < L; ++p) {
    const double* row = v.data() + p * V;
    double mx = row[0];
    for (int64_t k = 1; k < V; ++k) mx = std::max(mx, row[k]);
    double sum = 0;
    for (int64_t k = 0; k < V; ++k) sum += std::exp(row[k] - mx);
    out[static_cast<size_t>(p)] = mx + std::log(sum) - row[window[static_cast<size_t>(p + 1)]];
  }
  return out;
}

std::string read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST(PositionBuckets, PowersOfTwoFrom1KUpToTheLength) {
  auto ranges = [](int64_t L) {
    std::vector<std::pair<int64_t, int64_t>> out;
    for (const PositionBucket& b : position_buckets(L)) out.push_back({b.begin, b.end});
    return out;
  };
  using R = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(ranges(1), (R{{0, 1}}));
  EXPECT_EQ(ranges(1024), (R{{0, 1024}}));
  EXPECT_EQ(ranges(2500), (R{{0, 1024}, {1024, 2048}, {2048, 2500}}));
  EXPECT_EQ(ranges(4096), (R{{0, 1024}, {1024, 2048}, {2048, 4096}}));
  const std::vector<PositionBucket> big = position_buckets(1 << 20);
  ASSERT_EQ(big.size(), 11u);  // [0,1K) then 10 doublings up to 1M
  EXPECT_EQ(big.back().begin, 1 << 19);
  EXPECT_EQ(big.back().end, 1 << 20);
  EXPECT_THROW(position_buckets(0), Error);
}

TEST(WindowOffsets, EvenlySpreadDeterministicAndEmptyWhenTooShort) {
  EXPECT_EQ(window_offsets(100, 9, 3), (std::vector<int64_t>{0, 45, 90}));  // last start 100 - 10 = 90
  EXPECT_EQ(window_offsets(100, 9, 1), (std::vector<int64_t>{0}));
  EXPECT_EQ(window_offsets(10, 9, 4), (std::vector<int64_t>{0}));  // one possible start: duplicates removed
  EXPECT_TRUE(window_offsets(9, 9, 2).empty());
  EXPECT_EQ(window_offsets(1000, 99, 5), window_offsets(1000, 99, 5));
}

TEST(WindowLoss, SegmentedBucketsEqualDirectFullForwardCrossEntropy) {
  const Model model = micro_model(5);
  const int64_t L = 2500;
  const std::vector<int32_t> window = random_tokens(L + 1, 9, static_cast<int32_t>(model.config().vocab_size));
  const std::vector<double> direct = direct_losses(model, window);

  for (int64_t segment : {int64_t{700}, int64_t{1024}, L}) {  // segments that straddle bucket edges, and one
    std::vector<PositionBucket> buckets = position_buckets(L);
    std::vector<int64_t> seen;
    add_window_loss(model, window, segment, buckets, [&](int64_t done, int64_t total) {
      EXPECT_EQ(total, L);
      seen.push_back(done);
    });
    EXPECT_EQ(seen.back(), L);
    // Every position counted exactly once, in its own bucket.
    int64_t covered = 0;
    for (const PositionBucket& b : buckets) {
      EXPECT_EQ(b.tokens, b.end - b.begin) << "bucket " << b.begin;
      covered += b.tokens;
      double want = 0;
      for (int64_t p = b.begin; p < b.end; ++p) want += direct[static_cast<size_t>(p)];
      EXPECT_NEAR(b.mean(), want / static_cast<double>(b.end - b.begin), 1e-4)
          << "segment " << segment << " bucket " << b.begin;
    }
    EXPECT_EQ(covered, L);
    EXPECT_EQ(total_tokens(buckets), L);
    // The overall mean weights each bucket by its token count (not a mean of the bucket means).
    double direct_mean = 0;
    for (double l : direct) direct_mean += l;
    direct_mean /= static_cast<double>(L);
    EXPECT_NEAR(mean_loss(buckets), direct_mean, 1e-4);
    double weighted = 0;
    for (const PositionBucket& b : buckets) weighted += b.mean() * static_cast<double>(b.tokens);
    EXPECT_NEAR(mean_loss(buckets), weighted / static_cast<double>(L), 1e-9);
  }
}

TEST(WindowLoss, WindowsAccumulateIntoTheSameBuckets) {
  const Model model = micro_model(6);
  const int64_t L = 1500;
  const auto a = random_tokens(L + 1, 1, static_cast<int32_t>(model.config().vocab_size));
  const auto b = random_tokens(L + 1, 2, static_cast<int32_t>(model.config().vocab_size));
  std::vector<PositionBucket> only_a = position_buckets(L), only_b = position_buckets(L), both = position_buckets(L);
  add_window_loss(model, a, 512, only_a);
  add_window_loss(model, b, 512, only_b);
  add_window_loss(model, a, 512, both);
  add_window_loss(model, b, 512, both);
  for (size_t i = 0; i < both.size(); ++i) {
    EXPECT_EQ(both[i].tokens, only_a[i].tokens + only_b[i].tokens);
    EXPECT_NEAR(both[i].loss_sum, only_a[i].loss_sum + only_b[i].loss_sum, 1e-6);
  }
  std::vector<PositionBucket> wrong = position_buckets(L - 1);
  EXPECT_THROW(add_window_loss(model, a, 512, wrong), Error);
}

TEST(LossReport, FilesRoundTripAndMergeDrawsOneLinePerRun) {
  TempDir dir;
  LossReport r;
  r.meta = {{"model", "runs/hsa"}, {"device", "cpu"}, {"dtype", "f32"}, {"data", "eval.bin"}, {"data_tokens", 5000},
            {"samples", 2}, {"segment", 700}, {"commands", {"hsa eval loss ..."}}};
  LengthLoss l;
  l.length = 2048;
  l.offsets = {0, 2951};
  l.buckets = position_buckets(2048);
  l.buckets[0].loss_sum = 2048 * 3.0, l.buckets[0].tokens = 2048;
  l.buckets[1].loss_sum = 2048 * 2.0, l.buckets[1].tokens = 2048;
  r.lengths.push_back(l);
  r.lengths.push_back({1 << 20, {}, {}, 0, "eval.bin holds 5000 tokens"});
  write_loss_report(dir.path / "a", r);

  const nlohmann::json j = nlohmann::json::parse(read(dir.path / "a/loss.json"));
  EXPECT_EQ(j["lengths"][0]["tokens"], 4096);
  EXPECT_DOUBLE_EQ(j["lengths"][0]["mean_loss"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(j["lengths"][0]["buckets"][1]["mean_loss"].get<double>(), 2.0);
  EXPECT_EQ(j["lengths"][1]["skipped"], "eval.bin holds 5000 tokens");
  const LossReport back = loss_report_from_json(j);
  ASSERT_EQ(back.lengths.size(), 2u);
  EXPECT_EQ(back.lengths[0].buckets[1].tokens, 2048);
  EXPECT_EQ(back.meta["model"], "runs/hsa");
  const std::string md = read(dir.path / "a/loss.md");
  EXPECT_NE(md.find("| 0-1K | 3.000 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1K-2K | 2.000 |"), std::string::npos) << md;
  EXPECT_NE(md.find("**2.500**"), std::string::npos) << md;
  EXPECT_NE(md.find("L=1M skipped"), std::string::npos) << md;
  EXPECT_NE(read(dir.path / "a/loss.svg").find("<polyline "), std::string::npos);

  r.meta["model"] = "runs/swa";
  write_loss_report(dir.path / "b", r);
  write_merged_loss_report(dir.path / "m", {(dir.path / "a/loss.json").string(), (dir.path / "b/loss.json").string()},
                           "hsa eval loss --merge");
  const std::string svg = read(dir.path / "m/loss.svg");
  size_t lines = 0;
  for (size_t at = svg.find("<polyline "); at != std::string::npos; at = svg.find("<polyline ", at + 1)) ++lines;
  EXPECT_EQ(lines, 2u);
  EXPECT_NE(svg.find("runs/swa (L=2K)"), std::string::npos);
  const nlohmann::json m = nlohmann::json::parse(read(dir.path / "m/loss.json"));
  EXPECT_EQ(m["runs"].size(), 2u);
  EXPECT_EQ(m["commands"].back(), "hsa eval loss --merge");
}

// Model-level guarantees: incremental decoding equals the full forward, checkpoints round-trip exactly and
// damaged ones are refused.
#include "common/random_tokens.h"
#include "common/gradcheck.h"
#include "infer/session.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "model/param_spec.h"

#include <hsa/random.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

using namespace hsa;

using hsa::testing::random_tokens;

namespace {

std::string repo_path(const std::string& rel) { return std::string(HSA_SOURCE_DIR) + "/" + rel; }

Tensor full_logits(const Model& model, const std::vector<int32_t>& ids) {
  InferenceState state = model.new_state();
  Tensor input = Tensor::from_i32(ids, {1, static_cast<int64_t>(ids.size())});
  return model.forward(input, state).select(0, 0).contiguous();
}

// Logits of every position, feeding the tokens in segments of the given sizes (cycled).
Tensor incremental_logits(const Model& model, const std::vector<int32_t>& ids, const std::vector<int64_t>& sizes) {
  Session session(model);
  std::vector<Tensor> parts;
  int64_t pos = 0, n = static_cast<int64_t>(ids.size());
  for (size_t k = 0; pos < n; ++k) {
    int64_t len = std::min(sizes[k % sizes.size()], n - pos);
    parts.push_back(session.feed(std::span<const int32_t>(ids.data() + pos, len)));
    pos += len;
  }
  std::vector<double> all;
  for (const Tensor& p : parts) {
    auto v = p.to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return Tensor::from_values(all, {n, model.config().vocab_size});
}

}  // namespace

// perturb_retrieval_norms: random weights for the retrieval norms (initialised to ones), so that they matter.
void expect_incremental_equals_full(const ModelConfig& config, const std::vector<std::vector<int64_t>>& segments,
                                    bool perturb_retrieval_norms = false) {
  TensorMap params = init_parameters(config, 7, DType::f32);
  uint64_t seed = 100;
  if (perturb_retrieval_norms)
    for (auto& [name, t] : params)
      if (name.find("retrieval_norm") != std::string::npos || name.find("landmark_norm") != std::string::npos)
        t = randn(t.shape(), seed++, 1.0, DType::f32);
  Model model(config, params);
  // Over 4 chunks and 2 windows of the largest sliding window.
  int64_t n = std::max<int64_t>(4 * config.chunk_size, 2 * config.sliding_window) + 21;
  std::vector<int32_t> ids = random_tokens(n, 3, static_cast<int32_t>(config.vocab_size));
  Tensor reference = full_logits(model, ids);
  for (const std::vector<int64_t>& sizes : segments) {
    Tensor got = incremental_logits(model, ids, sizes);
    double diff = hsa::testing::max_abs_diff(got, reference);
    EXPECT_LT(diff, 1e-4) << "segments of " << sizes[0];
  }
}

TEST(Model, IncrementalDecodingEqualsFullForward) {
  ModelConfig config = ModelConfig::from_file(repo_path("configs/tiny.json"));
  expect_incremental_equals_full(config, {{1}, {7}, {50, 3}, {config.chunk_size + 5}});
}

// With the chunk encoder a chunk's keys, values and landmark exist only once its last token is in: decoding must
// still match the full forward, whichever segment boundary completes the chunk.
TEST(Model, IncrementalDecodingEqualsFullForwardWithChunkEncoder) {
  ModelConfig config = ModelConfig::from_file(repo_path("configs/tiny-encoder.json"));
  ASSERT_EQ(config.chunk_encoder_layers, 1);
  expect_incremental_equals_full(config, {{1}, {7}, {config.chunk_size + 5}});
}

TEST(Model, IncrementalDecodingEqualsFullForwardWithMeanOfTokensLandmarks) {
  ModelConfig config = ModelConfig::from_file(repo_path("configs/tiny-encoder.json"));
  config.chunk_encoder_landmark = "mean";
  expect_incremental_equals_full(config, {{1}, {7}, {config.chunk_size + 5}});
}

// At initialisation the [CLS] row (std 1) outweighs what the encoder's block adds, so "cls" landmarks of different
// chunks are nearly the same vector and retrieval starts without a signal; "mean" landmarks differ.
TEST(Model, MeanOfTokensLandmarksDifferAtInitialisation) {
  auto mean_cosine = [](const std::string& landmark) {
    ModelConfig config = ModelConfig::from_file(repo_path("configs/tiny-encoder.json"));
    config.chunk_encoder_landmark = landmark;
    Model model(config, init_parameters(config, 7, DType::f32));
    const int64_t n = 12 * config.chunk_size;
    std::vector<int32_t> ids(static_cast<size_t>(n));
    Rng rng(3);
    for (auto& t : ids) t = static_cast<int32_t>(rng.below(config.vocab_size));
    InferenceState state = model.new_state();
    model.forward(Tensor::from_i32(ids, {1, n}), state);
    Tensor lm = state.memory.memory.landmarks().contiguous();  // [1, C, H, dr/H]
    const int64_t C = lm.dim(1), H = lm.dim(2), d = lm.dim(3);
    const float* p = lm.data<float>();
    double sum = 0;
    int count = 0;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t a = 0; a < C; ++a)
        for (int64_t b = a + 1; b < C; ++b) {
          const float* x = p + (a * H + h) * d;
          const float* y = p + (b * H + h) * d;
          double xy = 0, xx = 0, yy = 0;
          for (int64_t e = 0; e < d; ++e) xy += x[e] * y[e], xx += x[e] * x[e], yy += y[e] * y[e];
          sum += xy / std::sqrt(xx * yy), ++count;
        }
    return sum / count;
  };
  const double cls = mean_cosine("cls"), mean = mean_cosine("mean");
  EXPECT_GT(cls, 0.99);
  EXPECT_LT(mean, 0.5);  // 0.25 for tiny-encoder (0.9999 with "cls")
}

// The retrieval norm applies to the query and to every landmark, whether its chunk completes in a full forward
// or while decoding (mean pooling and the chunk encoder); its weights are perturbed so that they matter.
TEST(Model, IncrementalDecodingEqualsFullForwardWithRetrievalNorm) {
  for (const char* file : {"configs/tiny.json", "configs/tiny-encoder.json"}) {
    ModelConfig config = ModelConfig::from_file(repo_path(file));
    config.hsa_retrieval_norm = true;
    expect_incremental_equals_full(config, {{1}, {7}, {config.chunk_size + 5}}, true);
  }
}

// The encoder is really in the path: the same weights with mean pooling give other logits once a chunk is
// complete, and the same logits before (no HSA layer reads memory before its first chunk completes).
TEST(Model, ChunkEncoderChangesLogitsOnlyAfterTheFirstChunk) {
  ModelConfig pooled = ModelConfig::from_file(repo_path("configs/micro.json"));
  ModelConfig encoded = pooled;
  encoded.chunk_encoder_layers = 1;
  TensorMap params = init_parameters(encoded, 9, DType::f32);
  TensorMap pooled_params;
  for (const auto& s : model_param_specs(pooled)) pooled_params[s.name] = params.at(s.name);
  std::vector<int32_t> ids = random_tokens(5 * pooled.chunk_size, 4, static_cast<int32_t>(pooled.vocab_size));
  Tensor a = full_logits(Model(pooled, pooled_params), ids), b = full_logits(Model(encoded, params), ids);
  const int64_t S = pooled.chunk_size;
  EXPECT_EQ(a.slice(0, 0, S).contiguous().to_vector(), b.slice(0, 0, S).contiguous().to_vector());
  EXPECT_GT(hsa::testing::max_abs_diff(a.slice(0, S, 5 * S).contiguous(), b.slice(0, S, 5 * S).contiguous()), 1e-4);
}

TEST(Model, SaveLoadGivesIdenticalLogits) {
  ModelConfig config = ModelConfig::from_file(repo_path("configs/micro.json"));
  Model model(config, init_parameters(config, 11, DType::f32));
  auto dir = std::filesystem::temp_directory_path() / ("hsa_model_roundtrip_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  save_checkpoint(dir.string(), config, model.params(), {{"note", "test"}});
  Checkpoint ck = load_checkpoint(dir.string());
  Model loaded(ck.config, ck.params);
  std::vector<int32_t> ids = random_tokens(45, 5, static_cast<int32_t>(config.vocab_size));
  EXPECT_EQ(full_logits(model, ids).to_vector(), full_logits(loaded, ids).to_vector());

  // A truncated weights file is refused with an error naming the file.
  auto weights = dir / "model.safetensors";
  auto size = std::filesystem::file_size(weights);
  std::filesystem::resize_file(weights, size - 100);
  try {
    load_checkpoint(dir.string());
    FAIL() << "truncated checkpoint accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
  // A corrupted header likewise.
  save_checkpoint(dir.string(), config, model.params(), {});
  {
    std::fstream f(weights, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.write("\x01\x02\x03garbage", 10);
  }
  EXPECT_THROW(load_checkpoint(dir.string()), Error);
  std::filesystem::remove_all(dir);
}

TEST(Model, SaveLoadWithChunkEncoderGivesIdenticalLogits) {
  ModelConfig config = ModelConfig::from_file(repo_path("configs/micro.json"));
  config.chunk_encoder_layers = 2;
  Model model(config, init_parameters(config, 12, DType::f32));
  auto dir = std::filesystem::temp_directory_path() / ("hsa_model_encoder_roundtrip_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  save_checkpoint(dir.string(), config, model.params(), {});
  Checkpoint ck = load_checkpoint(dir.string());
  EXPECT_EQ(ck.config.chunk_encoder_layers, 2);
  EXPECT_TRUE(ck.params.count("memory.encoder.1.ffn.down_proj.weight"));
  Model loaded(ck.config, ck.params);
  std::vector<int32_t> ids = random_tokens(45, 6, static_cast<int32_t>(config.vocab_size));
  EXPECT_EQ(full_logits(model, ids).to_vector(), full_logits(loaded, ids).to_vector());
  std::filesystem::remove_all(dir);
}

// The shipped model exported in 1 MiB shards is the unsharded export, bit for bit and logit for logit.
TEST(Model, ShardedExportGivesIdenticalTensorsAndLogits) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("hsa_model_sharded_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string whole = (dir / "whole").string(), sharded = (dir / "sharded").string();
  export_checkpoint(repo_path("models/passkey-tiny"), whole, DType::bf16);
  export_checkpoint(repo_path("models/passkey-tiny"), sharded, DType::bf16, 1 << 20);
  ASSERT_TRUE(fs::exists(dir / "sharded" / "model.safetensors.index.json"));
  ASSERT_FALSE(fs::exists(dir / "sharded" / "model.safetensors"));
  size_t shards = 0;
  for (const auto& entry : fs::directory_iterator(dir / "sharded"))
    if (entry.path().extension() == ".safetensors") {
      ++shards;
      EXPECT_LE(fs::file_size(entry.path()), 1u << 20) << entry.path();
    }
  EXPECT_GT(shards, 1u);

  Checkpoint a = load_checkpoint(whole), b = load_checkpoint(sharded);
  ASSERT_EQ(a.params.size(), b.params.size());
  for (const auto& [name, t] : a.params) {
    const Tensor& got = b.params.at(name);
    ASSERT_EQ(got.shape(), t.shape()) << name;
    EXPECT_EQ(got.to_vector(), t.to_vector()) << name;
  }
  Model ma(a.config, a.params), mb(b.config, b.params);
  std::vector<int32_t> ids = random_tokens(70, 9, static_cast<int32_t>(a.config.vocab_size));
  EXPECT_EQ(full_logits(ma, ids).to_vector(), full_logits(mb, ids).to_vector());
  fs::remove_all(dir);
}

TEST(Model, EmptyInputIsAnError) {
  ModelConfig config = ModelConfig::from_file(repo_path("configs/micro.json"));
  Model model(config, init_parameters(config, 1, DType::f32));
  Session session(model);
  EXPECT_THROW(session.prefill({}, 16), Error);
}

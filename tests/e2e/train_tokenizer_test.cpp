// `hsa train --tokenizer`: a model trained on a BPE token shard records the tokenizer in its config and every
// checkpoint carries the file.
#include "common/temp_dir.h"
#include "model/checkpoint.h"
#include "text/bpe_tokenizer.h"
#include "text/bpe_trainer.h"
#include "text/token_shard.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace hsa;
using hsa::testing::TempDir;
namespace fs = std::filesystem;

TEST(TrainTokenizer, CheckpointsCarryTheTokenizer) {
  TempDir tmp;
  std::string text;
  for (int i = 0; i < 300; ++i) text += "the quick brown fox jumps over the lazy dog " + std::to_string(i % 17) + ". ";
  WordCounter counter(BpeTrainOptions{}.special_tokens);
  counter.add(text);
  BpeTrainOptions options;
  options.vocab_size = 300;
  const std::string tok_path = tmp.file("bpe.json");
  BpeTokenizer tok(train_bpe(counter.counts(), options), tok_path);
  tok.save(tok_path);
  write_token_shard(tmp.file("data.bin"), tok.encode(text, /*add_bos=*/true));

  nlohmann::json cfg;
  std::ifstream(std::string(HSA_SOURCE_DIR) + "/configs/micro.json") >> cfg;
  cfg["vocab_size"] = 300;
  std::ofstream(tmp.file("cfg.json")) << cfg.dump();

  TrainOptions o;
  o.config_path = tmp.file("cfg.json");
  o.out_dir = tmp.file("run");
  o.data_path = tmp.file("data.bin");
  o.tokenizer_path = tok_path;
  o.batch = 2;
  o.seq_len = 32;
  o.steps = 2;
  o.eval_every = 0;
  o.save_every = 1;
  o.quiet = true;
  TrainResult r = train(o);
  Checkpoint ck = load_checkpoint(r.checkpoint);
  EXPECT_EQ(ck.config.tokenizer, "bpe.json");
  ASSERT_TRUE(fs::exists(fs::path(r.checkpoint) / "bpe.json"));
  std::unique_ptr<Tokenizer> loaded = load_tokenizer(ck.config.tokenizer, r.checkpoint);
  EXPECT_EQ(loaded->encode(text), tok.encode(text));

  cfg["vocab_size"] = 260;  // smaller than the tokenizer's 300 tokens
  std::ofstream(tmp.file("small.json")) << cfg.dump();
  o.config_path = tmp.file("small.json");
  o.out_dir = tmp.file("run-small");
  EXPECT_THROW(train(o), Error);
}

// A checkpoint whose config names a tokenizer file carries that file, through saving and export.
#include "common/temp_dir.h"
#include "model/checkpoint.h"
#include "model/param_spec.h"
#include "text/bpe_tokenizer.h"
#include "text/bpe_trainer.h"
#include "util/file_util.h"

#include <hsa/error.h>

#include <gtest/gtest.h>

#include <filesystem>

using namespace hsa;
using hsa::testing::TempDir;
namespace fs = std::filesystem;

TEST(CheckpointTokenizer, TravelsWithSaveAndExport) {
  TempDir tmp;
  WordCounter counter(BpeTrainOptions{}.special_tokens);
  counter.add("the cat sat on the mat, the cat sat on the hat");
  BpeTrainOptions options;
  options.vocab_size = 270;
  options.min_frequency = 1;
  const std::string source = tmp.file("my-tokenizer.json");
  BpeTokenizer(train_bpe(counter.counts(), options), source).save(source);

  ModelConfig cfg = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  cfg.vocab_size = 272;
  cfg.tokenizer = "tokenizer.json";
  const auto params = init_parameters(cfg, 3, DType::f32);
  const std::string dir = tmp.file("ckpt"), exported = tmp.file("exported");
  try {
    save_checkpoint(dir, cfg, params);
    FAIL() << "expected an error: the config names a tokenizer but none was given";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
  }
  save_checkpoint(dir, cfg, params, {}, source);
  EXPECT_EQ(read_file(dir + "/tokenizer.json"), read_file(source));
  export_checkpoint(dir, exported, DType::bf16);
  Checkpoint ck = load_checkpoint(exported);
  std::unique_ptr<Tokenizer> tok = load_tokenizer(ck.config.tokenizer, exported);
  EXPECT_EQ(tok->vocab_size(), 270);
  EXPECT_EQ(tok->decode(tok->encode("the cat")), "the cat");
  // Saving again into the directory the tokenizer already lies in keeps it.
  save_checkpoint(dir, cfg, params, {}, dir + "/tokenizer.json");
  EXPECT_EQ(read_file(dir + "/tokenizer.json"), read_file(source));
}

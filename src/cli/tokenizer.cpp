// hsa tokenizer: train a byte-level BPE tokenizer (Hugging Face tokenizer.json) and use it.
//   hsa tokenizer train -i data/lm-train.txt -o data/tokenizer.json --vocab 8192
//   hsa tokenizer encode -t data/tokenizer.json -f text.txt      (ids, space-separated)
//   hsa tokenizer decode -t data/tokenizer.json -f ids.txt       (text)
#include "cli/command.h"
#include "text/bpe_tokenizer.h"
#include "text/bpe_trainer.h"
#include "text/text_chunks.h"
#include "text/tokenizer.h"
#include "util/file_util.h"
#include "util/progress.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

namespace {

namespace fs = std::filesystem;

struct TrainOptions {
  std::vector<std::string> inputs;
  std::string output;
  int64_t vocab = 8192;
  int64_t min_frequency = 2;
  int64_t max_bytes = 500'000'000;  // counting runs at ~20 MB/s per core
  bool force = false;
};

struct UseOptions {
  std::string tokenizer, file, text;
};

constexpr size_t kChunkBytes = 4 << 20;

int run_train(const TrainOptions& o) {
  if (fs::exists(o.output) && !o.force) {
    std::fprintf(stderr, "hsa: tokenizer train: %s exists; pass --force to overwrite it\n", o.output.c_str());
    return 2;
  }
  hsa::BpeTrainOptions options;
  options.vocab_size = o.vocab;
  options.min_frequency = o.min_frequency;
  options.progress = true;

  int64_t total = 0;
  for (const std::string& path : o.inputs) total += static_cast<int64_t>(fs::file_size(path));
  // Over --max-bytes, an evenly spread sample of the pieces is counted (every piece when it all fits).
  const double keep = total > o.max_bytes ? static_cast<double>(o.max_bytes) / static_cast<double>(total) : 1.0;
  hsa::WordCounter counter(options.special_tokens);
  hsa::Progress progress("counting words", total, "B");
  int64_t done_before = 0, piece = 0;
  for (const std::string& path : o.inputs) {
    hsa::for_each_file_chunk(
        path, kChunkBytes,
        [&](std::string_view text) {
          const bool kept = static_cast<int64_t>((piece + 1) * keep) > static_cast<int64_t>(piece * keep);
          ++piece;
          if (kept) counter.add(text);
        },
        [&](int64_t read) { progress.update(done_before + read, fmt::format("{} distinct words", counter.counts().size())); });
    done_before += static_cast<int64_t>(fs::file_size(path));
  }
  progress.finish(fmt::format("{:.1f} MB counted{}, {} distinct words", counter.bytes() / 1e6,
                              keep < 1 ? fmt::format(" (a {:.0f}% sample; --max-bytes)", keep * 100) : "",
                              counter.counts().size()));
  hsa::BpeTokenizer tok(hsa::train_bpe(counter.counts(), options), o.output);
  tok.save(o.output);
  fmt::print("wrote {}: vocabulary {} ({} merges), bos = eos = {}\n", o.output, tok.vocab_size(),
             tok.spec().merges.size(), tok.bos_id());
  return 0;
}

std::string input_text(const UseOptions& o) { return o.file.empty() ? o.text : hsa::read_file(o.file); }

int run_encode(const UseOptions& o) {
  auto tok = hsa::BpeTokenizer::load(o.tokenizer);
  std::vector<int32_t> ids = tok->encode(input_text(o));
  fmt::print("{}\n", fmt::join(ids, " "));
  return 0;
}

int run_decode(const UseOptions& o) {
  auto tok = hsa::BpeTokenizer::load(o.tokenizer);
  std::istringstream in(input_text(o));
  std::vector<int32_t> ids;
  std::string word;
  while (in >> word) {
    int64_t id = -1;
    const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
    HSA_CHECK(ec == std::errc() && end == word.data() + word.size() && id >= 0 && id < tok->vocab_size(),
              "tokenizer decode: '{}' is not a token id in [0, {})", word, tok->vocab_size());
    ids.push_back(static_cast<int32_t>(id));
  }
  const std::string text = tok->decode(ids);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

hsa::cli::Command tokenizer_command("tokenizer", "train a byte-level BPE tokenizer (tokenizer.json), encode, decode",
                                    [](CLI::App& app) {
  app.require_subcommand(1);
  auto train = std::make_shared<TrainOptions>();
  CLI::App* train_cmd = app.add_subcommand("train", "train a byte-level BPE tokenizer on text files");
  train_cmd->add_option("-i,--input", train->inputs, "text file(s)")->required()->check(CLI::ExistingFile);
  train_cmd->add_option("-o,--output", train->output, "tokenizer.json to write")->required();
  train_cmd->add_option("--vocab", train->vocab, "vocabulary size (2 specials + 256 bytes + merges)")
      ->check(CLI::Range(int64_t{259}, int64_t{1} << 30))
      ->capture_default_str();
  train_cmd->add_option("--min-frequency", train->min_frequency, "never merge a pair seen fewer times")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  train_cmd->add_option("--max-bytes", train->max_bytes,
                        "count words in at most this much text, an evenly spread sample of the inputs")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  train_cmd->add_flag("--force", train->force, "overwrite an existing output file");
  train_cmd->footer(
      "\nSpecial tokens: <|endoftext|> (id 0; bos and eos, and the document separator of `hsa data build`) and "
      "<|pad|> (id 1).\n");

  auto use = std::make_shared<UseOptions>();
  CLI::App* encode_cmd = app.add_subcommand("encode", "print the token ids of a text, space-separated");
  CLI::App* decode_cmd = app.add_subcommand("decode", "print the text of space-separated token ids");
  for (CLI::App* cmd : {encode_cmd, decode_cmd}) {
    cmd->add_option("-t,--tokenizer", use->tokenizer, "tokenizer.json")->required()->check(CLI::ExistingFile);
    cmd->add_option("-f,--file", use->file, "input file")->check(CLI::ExistingFile);
    cmd->add_option("--text", use->text, "input given inline");
  }
  return [train, use, train_cmd, encode_cmd, decode_cmd] {
    if (train_cmd->parsed()) return run_train(*train);
    if (use->file.empty() == use->text.empty()) {
      std::fprintf(stderr, "hsa: tokenizer: give exactly one of -f FILE and --text TEXT\n");
      return 2;
    }
    if (encode_cmd->parsed()) return run_encode(*use);
    if (decode_cmd->parsed()) return run_decode(*use);
    throw hsa::Error("tokenizer: give a subcommand: train, encode or decode");
  };
});

}  // namespace

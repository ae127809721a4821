#include "common/temp_dir.h"
#include "text/bpe_tokenizer.h"
#include "text/bpe_trainer.h"
#include "text/byte_level.h"
#include "text/pretokenizer.h"
#include "text/text_chunks.h"
#include "text/token_shard.h"
#include "text/tokenizer.h"

#include <hsa/error.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>

using namespace hsa;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> pieces;
  split_gpt2(text, [&](std::string_view p) { pieces.emplace_back(p); });
  return pieces;
}

// Varied text: English, other scripts, digits, punctuation, runs of whitespace, emoji.
std::string sample_text(uint64_t seed, size_t words) {
  static const std::vector<std::string> vocab = {
      "the", "The", "tokenizer", "merges", "pairs", "of", "bytes", "it's", "don't", "we'll", "they're", "I'm",
      "résumé", "naïve", "Größe", "東京", "こんにちは", "привет", "مرحبا", "😀", "🚀🚀", "123", "4.56", "7,890",
      "(x)", "a+b", "--", "...", "\"quoted\"", "'single'", "tab\there", "line\n", "\n\n", "   ", "\t", "x²", "½"};
  std::mt19937_64 rng(seed);
  std::string text;
  for (size_t i = 0; i < words; ++i) {
    text += vocab[rng() % vocab.size()];
    text += (rng() % 7 == 0) ? "" : " ";
  }
  return text;
}

BpeTokenizer trained_tokenizer(int64_t vocab = 600) {
  WordCounter counter(BpeTrainOptions{}.special_tokens);
  counter.add(sample_text(1, 20000));
  BpeTrainOptions options;
  options.vocab_size = vocab;
  return BpeTokenizer(train_bpe(counter.counts(), options), "trained.json");
}

// A tokenizer.json with the 256 byte tokens (ids 0..255 in byte order) plus `extra` tokens and `merges`.
std::string tiny_json(const std::vector<std::string>& extra, const std::vector<std::string>& merges,
                      const std::string& added = "[]", const std::string& normalizer = "null") {
  nlohmann::ordered_json vocab;
  for (int b = 0; b < 256; ++b) vocab[byte_level::to_alphabet(std::string(1, static_cast<char>(b)))] = b;
  int id = 256;
  for (const std::string& t : extra) vocab[t] = id++;
  nlohmann::ordered_json root = {
      {"added_tokens", nlohmann::ordered_json::parse(added)},
      {"normalizer", nlohmann::ordered_json::parse(normalizer)},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  return root.dump();
}

}  // namespace

TEST(BpePretokenizer, SplitsLikeTheGpt2Pattern) {
  EXPECT_EQ(split("Hello world's test"), (std::vector<std::string>{"Hello", " world", "'s", " test"}));
  EXPECT_EQ(split("a  b"), (std::vector<std::string>{"a", " ", " b"}));
  EXPECT_EQ(split("a\n\nb"), (std::vector<std::string>{"a", "\n", "\n", "b"}));
  EXPECT_EQ(split("end  "), (std::vector<std::string>{"end", "  "}));
  EXPECT_EQ(split("x123 45!?"), (std::vector<std::string>{"x", "123", " 45", "!?"}));
  EXPECT_EQ(split("'''s it'LL"), (std::vector<std::string>{"'''", "s", " it", "'", "LL"}));
  EXPECT_EQ(split("Größe 東京 😀😀"), (std::vector<std::string>{"Größe", " 東京", " 😀😀"}));
  EXPECT_EQ(split("a\u3000b"), (std::vector<std::string>{"a", "\u3000", "b"}));  // ideographic space is \s
  // Invalid UTF-8 bytes are pieces of their own; the valid text around them splits as usual.
  EXPECT_EQ(split("ab\xff\xfe cd \xc3"), (std::vector<std::string>{"ab", "\xff", "\xfe", " cd", " ", "\xc3"}));
}

TEST(BpeTokenizer, AppliesKnownMergesByRank) {
  // "Ġ" is the byte alphabet's space.
  auto tok = BpeTokenizer::from_json(
      tiny_json({"he", "ll", "hell", "hello", "Ġw", "lo"}, {"h e", "l l", "he ll", "hell o", "Ġ w", "l o"}),
      "tiny.json");
  EXPECT_EQ(tok->vocab_size(), 262);
  EXPECT_EQ(tok->encode("hello"), (std::vector<int32_t>{259}));
  // "l o" ranks after "l l": in "llo" the first pair wins, leaving "o".
  EXPECT_EQ(tok->encode("llo"), (std::vector<int32_t>{257, 'o'}));
  EXPECT_EQ(tok->encode("lo"), (std::vector<int32_t>{261}));
  EXPECT_EQ(tok->encode("hello world"), (std::vector<int32_t>{259, 260, 'o', 'r', 'l', 'd'}));
  EXPECT_EQ(tok->decode(tok->encode("hello world")), "hello world");
  // Merges may also be given as pairs->
  auto pairs = BpeTokenizer::from_json(
      R"({"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},"model":{"type":"BPE","vocab":)" +
          nlohmann::json::parse(tiny_json({"he"}, {}))["model"]["vocab"].dump() + R"(,"merges":[["h","e"]]},
          "added_tokens":[{"id":257,"content":"<|endoftext|>","special":true}]})",
      "pairs->json");
  EXPECT_EQ(pairs->encode("hehe<|endoftext|>"), (std::vector<int32_t>{256, 256, 257}));
}

TEST(BpeTokenizer, RoundTripsRandomBytesAndSpecials) {
  BpeTokenizer tok = trained_tokenizer();
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.eos_id(), 0);
  EXPECT_EQ(tok.token_id("<|pad|>"), 1);
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const size_t n = rng() % 200;
    for (size_t i = 0; i < n; ++i) {
      switch (rng() % 5) {
        case 0: text.push_back(static_cast<char>(rng() % 256)); break;  // anything, invalid UTF-8 included
        case 1: text += trial % 2 ? "<|endoftext|>" : "<|pad|>"; break;
        case 2: text += sample_text(rng(), 2); break;
        default: text.push_back(" \n\tabc'"[rng() % 7]); break;
      }
    }
    const std::vector<int32_t> ids = tok.encode(text, /*add_bos=*/trial % 3 == 0);
    std::string back = tok.decode(ids);
    if (trial % 3 == 0) {
      ASSERT_EQ(ids.front(), tok.bos_id());
      back = back.substr(std::string("<|endoftext|>").size());
    }
    ASSERT_EQ(back, text) << "trial " << trial;
  }
  EXPECT_EQ(tok.encode("<|endoftext|><|pad|>"), (std::vector<int32_t>{0, 1}));
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(BpeTokenizer, MergesCompressTrainedText) {
  BpeTokenizer tok = trained_tokenizer();
  const std::string text = sample_text(3, 2000);
  EXPECT_LT(tok.encode(text).size() * 3, text.size()) << "a trained vocabulary should average over 3 bytes per token";
}

TEST(BpeTokenizer, TrainSaveLoadGivesIdenticalIds) {
  BpeTokenizer tok = trained_tokenizer();
  hsa::testing::TempDir tmp;
  const std::string dir = tmp.path.string(), path = tmp.file("tokenizer.json");
  tok.save(path);
  std::unique_ptr<Tokenizer> loaded = load_tokenizer("tokenizer.json", dir);
  EXPECT_EQ(loaded->name(), "tokenizer.json");
  EXPECT_EQ(loaded->vocab_size(), tok.vocab_size());
  const std::string text = sample_text(11, 5000) + "\xff\xfe<|endoftext|>";
  EXPECT_EQ(loaded->encode(text), tok.encode(text));
  EXPECT_EQ(dynamic_cast<BpeTokenizer&>(*loaded).to_json(), tok.to_json());
}

TEST(BpeTrainer, IsDeterministicAndHonoursMinFrequency) {
  std::unordered_map<std::string, int64_t> counts = {{"low", 5}, {"lower", 2}, {"newest", 6}, {"widest", 3}};
  BpeTrainOptions options;
  options.vocab_size = 300;
  options.min_frequency = 3;
  BpeSpec a = train_bpe(counts, options), b = train_bpe(counts, options);
  EXPECT_EQ(a.merges, b.merges);
  ASSERT_FALSE(a.merges.empty());
  // The most frequent pairs come first: "es" and "st" (9 each: newest + widest); ties go to older tokens.
  EXPECT_EQ(a.merges[0], (std::pair<std::string, std::string>{"e", "s"}));
  EXPECT_EQ(a.merges[1], (std::pair<std::string, std::string>{"es", "t"}));
  EXPECT_LT(a.vocab.size(), 300u) << "pairs seen fewer than 3 times are never merged";
}

TEST(BpeTokenizer, ChunkedEncodingEqualsWholeEncoding) {
  BpeTokenizer tok = trained_tokenizer();
  const std::string text = sample_text(5, 30000);
  std::vector<int32_t> chunked;
  TextChunker chunker(4096, [&](std::string_view piece) {
    std::vector<int32_t> ids = tok.encode(piece);
    chunked.insert(chunked.end(), ids.begin(), ids.end());
  });
  for (size_t i = 0; i < text.size(); i += 1000) chunker.push(std::string_view(text).substr(i, 1000));
  chunker.flush();
  EXPECT_EQ(chunked, tok.encode(text));
}

TEST(BpeTokenizer, RefusesBadFilesNamingThem) {
  const auto error_of = [](const std::string& json) -> std::string {
    try {
      BpeTokenizer::from_json(json, "bad/tokenizer.json");
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string good = tiny_json({"he"}, {"h e"}, R"([{"id":257,"content":"<|endoftext|>","special":true}])");
  EXPECT_EQ(error_of(good), "");
  auto with = [&](const std::string& pointer, const nlohmann::json& value) {
    nlohmann::json j = nlohmann::json::parse(good);
    j[nlohmann::json::json_pointer(pointer)] = value;
    return j.dump();
  };
  for (const std::string& e : {error_of("{not json"), error_of(with("/model/type", "WordPiece")),
                               error_of(with("/pre_tokenizer/type", "Whitespace")),
                               error_of(with("/normalizer", {{"type", "Lowercase"}})),
                               error_of(with("/model/merges/0", "h x")), error_of(with("/model/vocab/a", 3)),
                               error_of(with("/added_tokens/0/lstrip", true))}) {
    EXPECT_NE(e, "");
    EXPECT_NE(e.find("bad/tokenizer.json"), std::string::npos) << e;
  }
  nlohmann::json missing_byte = nlohmann::json::parse(good);
  missing_byte["model"]["vocab"].erase("a");
  EXPECT_NE(error_of(missing_byte.dump()).find("byte 0x61"), std::string::npos);
  EXPECT_THROW(load_tokenizer("no-such-tokenizer.json", fs::temp_directory_path().string()), Error);
  auto tok = BpeTokenizer::from_json(good, "t.json");
  std::vector<int32_t> bad = {'a', 258};
  try {
    tok->decode(bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("id 258 at position 1"), std::string::npos) << e.what();
  }
}

TEST(BpeTokenizer, NfcNormalizerAndBosEosFallback) {
  const std::string added = R"([{"id":256,"content":"</s>","special":true},{"id":257,"content":"<s>","special":true}])";
  auto nfc = BpeTokenizer::from_json(tiny_json({}, {}, added, R"({"type":"NFC"})"), "nfc->json");
  EXPECT_EQ(nfc->encode("e\u0301"), nfc->encode("\u00e9"));  // e + combining acute == é
  EXPECT_EQ(nfc->bos_id(), 257);
  EXPECT_EQ(nfc->eos_id(), 256);
  auto plain = BpeTokenizer::from_json(
      tiny_json({}, {}, R"([{"id":256,"content":"[SEP]","special":true}])"), "plain->json");
  EXPECT_EQ(plain->bos_id(), 256);  // no known name: the first special token
  EXPECT_NE(plain->encode("e\u0301"), plain->encode("\u00e9"));
}

TEST(TokenShardWriter, StreamsAndLeavesNothingWhenUnfinished) {
  hsa::testing::TempDir tmp;
  const std::string dir = tmp.path.string();
  {
    TokenShardWriter w(dir + "/a.bin", 2);
    w.append(std::vector<int32_t>{1, 2, 3});
    w.append(std::vector<int32_t>{65535});
    w.finish();
  }
  TokenShard shard = TokenShard::open(dir + "/a.bin");
  ASSERT_EQ(shard.size(), 4);
  EXPECT_EQ(shard[3], 65535);
  {
    TokenShardWriter w(dir + "/b.bin", 2);
    w.append(std::vector<int32_t>{1});
    EXPECT_THROW(w.append(std::vector<int32_t>{65536}), Error);
  }
  EXPECT_FALSE(fs::exists(dir + "/b.bin"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(BpeTrainer, SpecialTokensAreNotCountedAsWords) {
  WordCounter counter({"<|endoftext|>", "<|pad|>"});
  counter.add("a<|endoftext|>b<|pad|><|endoftext|>a <|pad|");
  EXPECT_EQ(counter.counts().at("a"), 2);
  EXPECT_EQ(counter.counts().at("b"), 1);
  EXPECT_EQ(counter.counts().at(" <|"), 1);  // an incomplete special is ordinary text
  EXPECT_EQ(counter.counts().at("pad"), 1);
  EXPECT_EQ(counter.counts().at("|"), 1);
  EXPECT_EQ(counter.counts().size(), 5u);
}

// Byte-level BPE tokenizer read from and written to Hugging Face `tokenizer.json` files (GPT-2 style).
//
// What a file may hold (anything else is refused with an error naming the file and the unsupported part):
//   model          BPE with `vocab` and `merges` (either "a b" strings or ["a", "b"] pairs), `ignore_merges`;
//                  no dropout, continuing_subword_prefix, end_of_word_suffix or byte_fallback. Every one of the
//                  256 byte characters must be in the vocabulary (so any byte string can be encoded).
//   normalizer     null or NFC (directly or as the only member of a Sequence).
//   pre_tokenizer  ByteLevel (add_prefix_space, use_regex), directly or as the only member of a Sequence.
//   decoder        null or ByteLevel.   post_processor: ignored (encode adds bos only when asked).
//   added_tokens   matched in the raw text before normalization and pre-tokenization, leftmost and then
//                  longest first, as Hugging Face does for special tokens; lstrip, rstrip and single_word
//                  are refused. (Hugging Face matches non-special tokens with normalized=true in the
//                  normalized text; with an NFC normalizer that differs only for tokens NFC changes.)
// Encoding: added tokens are cut out, each remaining piece is NFC-normalized when the file asks, split by the
// GPT-2 pattern (text/pretokenizer.h) and each pre-token merged by BPE (cached per pre-token). Bytes that are
// not valid UTF-8 are pre-tokens of their own, so decode(encode(x)) == x for any byte string when the file has
// no normalizer and add_prefix_space is off (true of the tokenizers `hsa tokenizer train` writes).
// Decoding: added tokens give their content, vocabulary tokens their bytes.
// bos_id/eos_id: a tokenizer.json does not name them, so they are the first of these tokens present —
//   bos: <|endoftext|>, <s>, <|begin_of_text|>, <bos>;   eos: <|endoftext|>, </s>, <|end_of_text|>, <eos>
// — else the first special added token; else -1 (such a file still encodes and decodes, but encode with
// add_bos throws, and so does `hsa data build`, which needs a bos).
#pragma once
#include "text/tokenizer.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hsa {

struct BpeAddedToken {
  int32_t id = 0;
  std::string content;
  bool special = true;
};

// Everything a byte-level BPE tokenizer is made of; what the trainer produces and the JSON reader fills.
struct BpeSpec {
  std::vector<std::pair<std::string, int32_t>> vocab;  // token (in the byte alphabet) -> id
  std::vector<std::pair<std::string, std::string>> merges;  // in priority order
  std::vector<BpeAddedToken> added_tokens;
  bool add_prefix_space = false;
  bool use_regex = true;
  bool nfc = false;
  bool ignore_merges = false;
};

class BpeTokenizer final : public Tokenizer {
 public:
  // Checks the spec (ids unique, merges of known tokens whose concatenation is a token, every byte present);
  // errors name `name` (the file).
  BpeTokenizer(BpeSpec spec, std::string name);

  // Reads a tokenizer.json; errors name the file.
  static std::unique_ptr<BpeTokenizer> load(const std::string& path);
  static std::unique_ptr<BpeTokenizer> from_json(std::string_view json, const std::string& name);
  // The tokenizer.json text (Hugging Face format), and writing it atomically to `path`.
  std::string to_json() const;
  void save(const std::string& path) const;

  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_bytes_.size()); }
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  // The file name (without its folder); errors name the whole path.
  std::string name() const override;

  const BpeSpec& spec() const { return spec_; }
  // The id of a token in the byte alphabet (or an added token's content), or -1.
  int32_t token_id(const std::string& token) const;

 private:
  struct Merge {
    int32_t rank, new_id;
  };
  BpeSpec spec_;
  std::string name_;
  int32_t bos_id_ = -1, eos_id_ = -1;
  std::unordered_map<std::string, int32_t> token_to_id_;
  std::vector<std::string> id_to_bytes_;  // what each id decodes to ("" for ids no token has)
  std::vector<bool> id_known_;
  std::vector<uint8_t> id_is_added_;
  int32_t byte_ids_[256];
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  std::vector<const BpeAddedToken*> added_by_first_byte_[256];  // longest first
  // Pre-token bytes -> ids. Shared by every caller (encode is const and may run on several threads).
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;

  void encode_piece(std::string_view piece, std::vector<int32_t>& ids) const;
  void encode_word(std::string_view word, std::vector<int32_t>& ids) const;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
};

}  // namespace hsa

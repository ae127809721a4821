// Tokenizers: text <-> token ids. A model names its tokenizer in its config (`tokenizer`): "bytes" (the
// default) is the byte-level tokenizer below; anything else is a Hugging Face `tokenizer.json` file beside the
// model's config. Code that turns text into tokens takes a `const Tokenizer&`, never a concrete class.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hsa {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual int64_t vocab_size() const = 0;
  // Token ids of `text`, optionally preceded by bos_id().
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos = false) const = 0;
  // Ids back to text. Ids outside [0, vocab_size) throw hsa::Error naming the id and its position.
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  // What the config calls it: "bytes", or the tokenizer file's name.
  virtual std::string name() const = 0;
};

// Byte-level tokenizer: ids 0..255 are the bytes themselves, 256..259 are special tokens.
// One byte = one token, so synthetic task lengths in tokens are exact and any text round-trips.
class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kBos = 256, kEos = 257, kPad = 258, kSep = 259;
  int64_t vocab_size() const override { return 260; }
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false) const override;
  // Specials render as "<bos>", "<eos>", "<pad>", "<sep>".
  std::string decode(std::span<const int32_t> ids) const override;
  int32_t bos_id() const override { return kBos; }
  int32_t eos_id() const override { return kEos; }
  std::string name() const override { return "bytes"; }
};

// The tokenizer named `spec` ("bytes", or a tokenizer.json path relative to `model_dir`). Throws hsa::Error
// naming the file when it cannot be loaded.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec, const std::string& model_dir);

// Where a prompt ends and its answer begins. Subword tokenizers fold a word's leading space into the word's token
// (" 7944668"), so a prompt ending in a space would end in a lone-space token that natural text never has, and
// an answer tokenised without its space would be other tokens than the same value inside the text: copying it
// from the context would be a translation, not a copy. For them the trailing spaces of `prompt` move to the
// front of `answer`. The byte-level tokenizer sees the same bytes either way and keeps them in the prompt (what
// the shipped byte-level models were trained on).
void move_trailing_space_to_answer(std::string& prompt, std::string& answer, const Tokenizer& tokenizer);

}  // namespace hsa

#include "text/tokenizer.h"

#include "text/bpe_tokenizer.h"

#include <hsa/error.h>

#include <filesystem>

namespace hsa {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() + (add_bos ? 1 : 0));
  if (add_bos) ids.push_back(kBos);
  for (char c : text) ids.push_back(static_cast<int32_t>(static_cast<unsigned char>(c)));
  return ids;
}

std::string ByteTokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  text.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t id = ids[i];
    if (id >= 0 && id < 256) {
      text.push_back(static_cast<char>(static_cast<unsigned char>(id)));
      continue;
    }
    switch (id) {
      case kBos: text += "<bos>"; break;
      case kEos: text += "<eos>"; break;
      case kPad: text += "<pad>"; break;
      case kSep: text += "<sep>"; break;
      default:
        fail("ByteTokenizer::decode: id {} at position {} is outside the vocabulary [0, {})", id, i, vocab_size());
    }
  }
  return text;
}

}  // namespace hsa

namespace hsa {

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec, const std::string& model_dir) {
  if (spec.empty() || spec == "bytes") return std::make_unique<ByteTokenizer>();
  const std::filesystem::path path = std::filesystem::path(model_dir) / spec;
  HSA_CHECK(std::filesystem::is_regular_file(path), "tokenizer {}: no such file (the model config names '{}')",
            path.string(), spec);
  return BpeTokenizer::load(path.string());
}

void move_trailing_space_to_answer(std::string& prompt, std::string& answer, const Tokenizer& tokenizer) {
  if (tokenizer.name() == "bytes") return;
  const size_t end = prompt.find_last_not_of(' ') + 1;  // npos + 1 == 0: an all-space prompt moves whole
  answer.insert(0, prompt, end);
  prompt.resize(end);
}

}  // namespace hsa

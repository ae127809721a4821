// A stand-in subword tokenizer for tests: every run of letters or digits is one token, every other byte is one
// token, ids handed out on first sight. Token counts differ from byte counts (about 1 token per 3 bytes of
// prose) and the mapping is reversible, so code that passes with it does not assume 1 byte = 1 token.
#pragma once
#include "text/tokenizer.h"

#include <hsa/error.h>

#include <cctype>
#include <map>
#include <mutex>

namespace hsa::test {

class WordTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kBos = 0, kEos = 1;
  int64_t vocab_size() const override { return 1 << 20; }
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false) const override {
    std::vector<int32_t> ids;
    if (add_bos) ids.push_back(kBos);
    for (size_t i = 0; i < text.size();) {
      size_t j = i + 1;
      if (std::isalnum(static_cast<unsigned char>(text[i])))
        while (j < text.size() && std::isalnum(static_cast<unsigned char>(text[j]))) ++j;
      ids.push_back(id_of(text.substr(i, j - i)));
      i = j;
    }
    return ids;
  }
  std::string decode(std::span<const int32_t> ids) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out;
    for (int32_t id : ids) {
      if (id == kBos || id == kEos) continue;
      HSA_CHECK(id >= 2 && static_cast<size_t>(id - 2) < words_.size(), "WordTokenizer: unknown id {}", id);
      out += words_[static_cast<size_t>(id - 2)];
    }
    return out;
  }
  int32_t bos_id() const override { return kBos; }
  int32_t eos_id() const override { return kEos; }
  std::string name() const override { return "words"; }

 private:
  int32_t id_of(std::string_view word) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, added] = ids_.emplace(std::string(word), static_cast<int32_t>(words_.size() + 2));
    if (added) words_.push_back(std::string(word));
    return it->second;
  }
  mutable std::mutex mutex_;
  mutable std::map<std::string, int32_t, std::less<>> ids_;
  mutable std::vector<std::string> words_;
};

}  // namespace hsa::test

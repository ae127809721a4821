// Training a byte-level BPE tokenizer: count the pre-tokens (GPT-2 split) of a corpus, then repeatedly merge
// the most frequent adjacent pair of tokens inside them, updating pair counts only in the words a merge touches.
// Ties between equally frequent pairs go to the pair of smaller ids (left, then right): deterministic, and
// since ids follow creation order, older tokens win.
#pragma once
#include "text/bpe_tokenizer.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hsa {

struct BpeTrainOptions {
  int64_t vocab_size = 8192;   // specials + 256 bytes + merges; training stops early when pairs run out
  int64_t min_frequency = 2;   // a pair seen fewer times is never merged
  // Our tokenizers' specials: ids 0, 1, ...; the first is bos and eos (text/bpe_tokenizer.h).
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|pad|>"};
  bool progress = false;       // a progress line with ETA on stderr
};

// Pre-token counts of a corpus fed in pieces. Special tokens are cut out first (never counted as words).
class WordCounter {
 public:
  explicit WordCounter(std::vector<std::string> special_tokens);
  // Counts the pre-tokens of `text`; pieces should end at whitespace so no word is cut in two.
  void add(std::string_view text);
  const std::unordered_map<std::string, int64_t>& counts() const { return counts_; }
  int64_t bytes() const { return bytes_; }

 private:
  std::vector<std::string> specials_;
  std::unordered_map<std::string, int64_t> counts_;
  int64_t bytes_ = 0;
  void add_piece(std::string_view piece);
};

BpeSpec train_bpe(const std::unordered_map<std::string, int64_t>& word_counts, const BpeTrainOptions& options);

}  // namespace hsa

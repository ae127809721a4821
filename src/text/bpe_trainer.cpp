#include "text/bpe_trainer.h"

#include "text/byte_level.h"
#include "text/pretokenizer.h"
#include "util/progress.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <queue>

namespace hsa {

WordCounter::WordCounter(std::vector<std::string> special_tokens) : specials_(std::move(special_tokens)) {}

void WordCounter::add(std::string_view text) {
  bytes_ += static_cast<int64_t>(text.size());
  // Cut out the earliest special token (the longest on a tie), count the text before it, repeat. Each
  // special's next occurrence is searched for again only once the cut has passed it, so this stays linear.
  std::vector<size_t> next(specials_.size());
  for (size_t k = 0; k < specials_.size(); ++k) next[k] = text.find(specials_[k]);
  size_t start = 0;
  for (;;) {
    size_t at = std::string_view::npos, length = 0;
    for (size_t k = 0; k < specials_.size(); ++k) {
      if (next[k] != std::string_view::npos && next[k] < start) next[k] = text.find(specials_[k], start);
      if (next[k] < at || (next[k] == at && at != std::string_view::npos && specials_[k].size() > length))
        at = next[k], length = specials_[k].size();
    }
    if (at == std::string_view::npos) break;
    add_piece(text.substr(start, at - start));
    start = at + length;
  }
  add_piece(text.substr(start));
}

void WordCounter::add_piece(std::string_view piece) {
  split_gpt2(piece, [&](std::string_view word) { ++counts_[std::string(word)]; });  // short words: no allocation
}

namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }
int32_t left_of(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t right_of(uint64_t key) { return static_cast<int32_t>(key & 0xffffffffu); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

struct Candidate {
  int64_t count;
  uint64_t pair;
  // Max-heap: more frequent first, then the smaller pair.
  bool operator<(const Candidate& o) const { return count != o.count ? count < o.count : pair > o.pair; }
};

class Trainer {
 public:
  Trainer(const std::unordered_map<std::string, int64_t>& word_counts, const BpeTrainOptions& o) : options_(o) {
    HSA_CHECK(o.vocab_size >= static_cast<int64_t>(o.special_tokens.size()) + 256,
              "tokenizer train: --vocab {} is smaller than the {} special tokens + 256 bytes", o.vocab_size,
              o.special_tokens.size());
    for (const std::string& s : o.special_tokens) tokens_.push_back(s);
    for (int b = 0; b < 256; ++b) tokens_.push_back(byte_level::to_alphabet(std::string(1, static_cast<char>(b))));
    const int32_t first_byte = static_cast<int32_t>(o.special_tokens.size());
    // Sorted so that word order, and with it everything after, does not depend on the hash map's order.
    std::vector<std::pair<std::string, int64_t>> sorted(word_counts.begin(), word_counts.end());
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [text, count] : sorted) {
      if (text.size() < 2) continue;  // nothing to merge
      Word w{{}, count};
      w.symbols.reserve(text.size());
      for (char c : text) w.symbols.push_back(first_byte + static_cast<unsigned char>(c));
      words_.push_back(std::move(w));
    }
    for (int32_t wi = 0; wi < static_cast<int32_t>(words_.size()); ++wi) add_pairs(wi, /*register_all=*/true);
    for (const auto& [pair, count] : pair_count_) heap_.push({count, pair});
  }

  BpeSpec run() {
    const int64_t merges_wanted = options_.vocab_size - static_cast<int64_t>(tokens_.size());
    Progress progress("tokenizer train", merges_wanted, "merges");
    std::vector<std::pair<std::string, std::string>> merges;
    std::vector<int32_t> stamp(words_.size(), -1);
    while (static_cast<int64_t>(merges.size()) < merges_wanted && !heap_.empty()) {
      const Candidate top = heap_.top();
      heap_.pop();
      auto it = pair_count_.find(top.pair);
      const int64_t current = it == pair_count_.end() ? 0 : it->second;
      if (current != top.count) {  // stale: counts only fall for existing pairs, so re-queue the true count
        if (current > 0) heap_.push({current, top.pair});
        continue;
      }
      if (current < options_.min_frequency) break;
      const int32_t a = left_of(top.pair), b = right_of(top.pair);
      const int32_t merged = static_cast<int32_t>(tokens_.size());
      tokens_.push_back(tokens_[a] + tokens_[b]);
      merges.emplace_back(tokens_[a], tokens_[b]);
      const int32_t step = static_cast<int32_t>(merges.size());
      std::vector<int32_t> touched = std::move(where_[top.pair]);
      where_.erase(top.pair);
      new_pairs_.clear();
      for (int32_t wi : touched) {
        if (stamp[wi] == step) continue;  // listed twice
        stamp[wi] = step;
        merge_in_word(wi, a, b, merged);
      }
      std::sort(new_pairs_.begin(), new_pairs_.end());
      new_pairs_.erase(std::unique(new_pairs_.begin(), new_pairs_.end()), new_pairs_.end());
      for (uint64_t p : new_pairs_) {
        auto c = pair_count_.find(p);
        if (c != pair_count_.end() && c->second > 0) heap_.push({c->second, p});
      }
      if (options_.progress)
        progress.update(step, fmt::format("{} x '{}'", current, tokens_.back().size() <= 24 ? tokens_.back() : tokens_.back().substr(0, 24)));
    }
    if (options_.progress) progress.finish(fmt::format("{} merges, vocabulary {}", merges.size(), tokens_.size()));

    BpeSpec spec;
    for (int32_t id = 0; id < static_cast<int32_t>(tokens_.size()); ++id) spec.vocab.emplace_back(tokens_[id], id);
    spec.merges = std::move(merges);
    for (int32_t id = 0; id < static_cast<int32_t>(options_.special_tokens.size()); ++id)
      spec.added_tokens.push_back({id, options_.special_tokens[id], true});
    return spec;
  }

 private:
  const BpeTrainOptions& options_;
  std::vector<std::string> tokens_;  // by id, in the byte alphabet
  std::vector<Word> words_;
  std::unordered_map<uint64_t, int64_t> pair_count_;
  std::unordered_map<uint64_t, std::vector<int32_t>> where_;  // pair -> words that had it (may repeat)
  std::priority_queue<Candidate> heap_;
  std::vector<uint64_t> new_pairs_;

  void add_pairs(int32_t wi, bool register_all, int32_t merged = -1) {
    const Word& w = words_[wi];
    for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
      const uint64_t p = pair_key(w.symbols[i], w.symbols[i + 1]);
      pair_count_[p] += w.count;
      if (register_all || w.symbols[i] == merged || w.symbols[i + 1] == merged) {
        where_[p].push_back(wi);
        if (!register_all) new_pairs_.push_back(p);
      }
    }
  }

  void remove_pairs(int32_t wi) {
    const Word& w = words_[wi];
    for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
      auto it = pair_count_.find(pair_key(w.symbols[i], w.symbols[i + 1]));
      it->second -= w.count;
      if (it->second == 0) pair_count_.erase(it);
    }
  }

  // Replaces each (a, b) in the word, left to right without overlaps, and moves its pair counts along.
  void merge_in_word(int32_t wi, int32_t a, int32_t b, int32_t merged) {
    std::vector<int32_t>& s = words_[wi].symbols;
    bool found = false;
    for (size_t i = 0; i + 1 < s.size(); ++i) found |= (s[i] == a && s[i + 1] == b);
    if (!found) return;
    remove_pairs(wi);
    size_t out = 0;
    for (size_t i = 0; i < s.size();) {
      if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
        s[out++] = merged;
        i += 2;
      } else {
        s[out++] = s[i++];
      }
    }
    s.resize(out);
    add_pairs(wi, /*register_all=*/false, merged);
  }
};

}  // namespace

BpeSpec train_bpe(const std::unordered_map<std::string, int64_t>& word_counts, const BpeTrainOptions& options) {
  return Trainer(word_counts, options).run();
}

}  // namespace hsa

#include "text/bpe_tokenizer.h"

#include "text/byte_level.h"
#include "text/pretokenizer.h"
#include "text/unicode_text.h"

#include <hsa/error.h>

#include <algorithm>
#include <filesystem>
#include <queue>

namespace hsa {

namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

// Beyond this many cached pre-tokens the cache stops growing (a corpus' distinct words number in the millions
// at most; this bounds memory at a few hundred MB in the worst case).
constexpr size_t kMaxCachedWords = 1 << 20;

int32_t first_present(const std::unordered_map<std::string, int32_t>& ids, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    auto it = ids.find(n);
    if (it != ids.end()) return it->second;
  }
  return -1;
}

}  // namespace

BpeTokenizer::BpeTokenizer(BpeSpec spec, std::string name) : spec_(std::move(spec)), name_(std::move(name)) {
  int32_t max_id = -1;
  for (const auto& [token, id] : spec_.vocab) {
    HSA_CHECK(id >= 0, "tokenizer {}: token '{}' has a negative id {}", name_, token, id);
    max_id = std::max(max_id, id);
  }
  for (const BpeAddedToken& t : spec_.added_tokens) {
    HSA_CHECK(t.id >= 0, "tokenizer {}: added token '{}' has a negative id {}", name_, t.content, t.id);
    HSA_CHECK(!t.content.empty(), "tokenizer {}: added token {} is empty", name_, t.id);
    max_id = std::max(max_id, t.id);
  }
  HSA_CHECK(max_id >= 0, "tokenizer {}: the vocabulary is empty", name_);
  id_to_bytes_.assign(static_cast<size_t>(max_id) + 1, std::string());
  id_known_.assign(id_to_bytes_.size(), false);
  id_is_added_.assign(id_to_bytes_.size(), 0);
  for (const auto& [token, id] : spec_.vocab) {
    HSA_CHECK(!id_known_[id], "tokenizer {}: id {} is given to two tokens (the second is '{}')", name_, id, token);
    HSA_CHECK(token_to_id_.emplace(token, id).second, "tokenizer {}: token '{}' appears twice in the vocabulary",
              name_, token);
    id_known_[id] = true;
    std::optional<std::string> bytes = byte_level::to_bytes(token);
    id_to_bytes_[id] = bytes ? *bytes : token;  // a token outside the byte alphabet decodes as written
  }
  for (const BpeAddedToken& t : spec_.added_tokens) {
    auto it = token_to_id_.find(t.content);
    HSA_CHECK(it == token_to_id_.end() || it->second == t.id,
              "tokenizer {}: added token '{}' has id {} but the vocabulary gives it {}", name_, t.content, t.id,
              it == token_to_id_.end() ? -1 : it->second);
    HSA_CHECK(it != token_to_id_.end() || !id_known_[t.id],
              "tokenizer {}: added token '{}' takes id {} of another token", name_, t.content, t.id);
    token_to_id_.emplace(t.content, t.id);
    id_known_[t.id] = true;
    id_is_added_[t.id] = 1;
    id_to_bytes_[t.id] = t.content;
  }
  for (int b = 0; b < 256; ++b) {
    const std::string shown = byte_level::utf8(byte_level::char_of_byte(static_cast<unsigned char>(b)));
    auto it = token_to_id_.find(shown);
    HSA_CHECK(it != token_to_id_.end(),
              "tokenizer {}: not a byte-level BPE vocabulary: byte 0x{:02x} (shown as '{}') has no token", name_, b,
              shown);
    byte_ids_[b] = it->second;
  }
  merges_.reserve(spec_.merges.size());
  for (size_t rank = 0; rank < spec_.merges.size(); ++rank) {
    const auto& [left, right] = spec_.merges[rank];
    const int32_t a = token_id(left), b = token_id(right), merged = token_id(left + right);
    HSA_CHECK(a >= 0 && b >= 0 && merged >= 0,
              "tokenizer {}: merge {} ('{}' '{}') names a token that is not in the vocabulary ('{}')", name_, rank,
              left, right, a < 0 ? left : b < 0 ? right : left + right);
    merges_.emplace(pair_key(a, b), Merge{static_cast<int32_t>(rank), merged});  // the first (best) rank wins
  }
  for (const BpeAddedToken& t : spec_.added_tokens)
    added_by_first_byte_[static_cast<unsigned char>(t.content[0])].push_back(&t);
  for (auto& list : added_by_first_byte_)
    std::stable_sort(list.begin(), list.end(),
                     [](const BpeAddedToken* x, const BpeAddedToken* y) { return x->content.size() > y->content.size(); });

  bos_id_ = first_present(token_to_id_, {"<|endoftext|>", "<s>", "<|begin_of_text|>", "<bos>"});
  eos_id_ = first_present(token_to_id_, {"<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>"});
  for (const BpeAddedToken& t : spec_.added_tokens) {
    if (!t.special) continue;
    if (bos_id_ < 0) bos_id_ = t.id;
    if (eos_id_ < 0) eos_id_ = t.id;
  }
}

std::string BpeTokenizer::name() const { return std::filesystem::path(name_).filename().string(); }

int32_t BpeTokenizer::token_id(const std::string& token) const {
  auto it = token_to_id_.find(token);
  return it == token_to_id_.end() ? -1 : it->second;
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (add_bos) {
    HSA_CHECK(bos_id_ >= 0, "tokenizer {}: encode with bos, but the file has no token to use as bos (expected "
              "<|endoftext|>, <s> or a special added token)", name_);
    ids.push_back(bos_id_);
  }
  if (spec_.added_tokens.empty()) {
    encode_piece(text, ids);
    return ids;
  }
  size_t piece_start = 0;
  for (size_t i = 0; i < text.size();) {
    const BpeAddedToken* found = nullptr;
    for (const BpeAddedToken* t : added_by_first_byte_[static_cast<unsigned char>(text[i])])
      if (text.compare(i, t->content.size(), t->content) == 0) {
        found = t;  // longest first
        break;
      }
    if (!found) {
      ++i;
      continue;
    }
    encode_piece(text.substr(piece_start, i - piece_start), ids);
    ids.push_back(found->id);
    i += found->content.size();
    piece_start = i;
  }
  encode_piece(text.substr(piece_start), ids);
  return ids;
}

// One stretch of text between added tokens: normalizer, prefix space, pre-tokenizer, BPE.
void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& ids) const {
  if (piece.empty()) return;
  std::string owned;
  if (spec_.nfc) {
    owned = unicode::nfc(piece);
    piece = owned;
  }
  if (spec_.add_prefix_space && piece.front() != ' ') {
    std::string prefixed(1, ' ');
    prefixed.append(piece);  // `piece` may point into `owned`: build the new text before replacing it
    owned = std::move(prefixed);
    piece = owned;
  }
  if (!spec_.use_regex) {
    encode_word(piece, ids);
    return;
  }
  split_gpt2(piece, [&](std::string_view word) { encode_word(word, ids); });
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& ids) const {
  if (word.size() == 1) {
    ids.push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
    return;
  }
  thread_local std::string key;
  key.assign(word);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> merged;
  merge_word(word, merged);
  ids.insert(ids.end(), merged.begin(), merged.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() < kMaxCachedWords) cache_.emplace(key, std::move(merged));
}

// BPE on one pre-token: start from its bytes, repeatedly apply the best-ranked merge among adjacent pairs
// (leftmost first on ties). A heap of candidate merges with lazy invalidation makes it O(n log n).
void BpeTokenizer::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  if (spec_.ignore_merges) {
    const int32_t whole = token_id(byte_level::to_alphabet(word));
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<int32_t> id(n), prev(n), next(n);
  for (int32_t i = 0; i < n; ++i) {
    id[i] = byte_ids_[static_cast<unsigned char>(word[i])];
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank, pos;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  const auto consider = [&](int32_t left) {
    if (left < 0 || next[left] < 0) return;
    auto it = merges_.find(pair_key(id[left], id[next[left]]));
    if (it != merges_.end()) heap.push({it->second.rank, left});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  std::vector<bool> alive(n, true);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    if (!alive[c.pos] || next[c.pos] < 0) continue;
    const int32_t right = next[c.pos];
    auto it = merges_.find(pair_key(id[c.pos], id[right]));
    if (it == merges_.end() || it->second.rank != c.rank) continue;  // the pair changed since it was queued
    id[c.pos] = it->second.new_id;
    alive[right] = false;
    next[c.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.pos;
    consider(prev[c.pos]);
    consider(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= vocab_size() || !id_known_[id])
      fail("tokenizer {}: decode: id {} at position {} is not in the vocabulary [0, {})", name_, id, i, vocab_size());
    text += id_to_bytes_[id];
  }
  return text;
}

}  // namespace hsa

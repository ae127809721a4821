// Byte-level tokenizer: ids 0..255 are the bytes themselves, 256..259 are special tokens.
// One byte = one token, so synthetic task lengths in tokens are exact and any text round-trips.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hsa {

class ByteTokenizer {
 public:
  static constexpr int32_t kBos = 256, kEos = 257, kPad = 258, kSep = 259;
  int64_t vocab_size() const { return 260; }

  // Bytes of `text` as ids, optionally preceded by kBos.
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false) const;
  // Bytes back to text; specials render as "<bos>", "<eos>", "<pad>", "<sep>". Ids outside
  // [0, vocab_size) throw hsa::Error naming the id and its position.
  std::string decode(std::span<const int32_t> ids) const;
};

}  // namespace hsa

// The Unicode facts the byte-level BPE tokenizer needs: UTF-8 decoding that reports invalid bytes instead of
// replacing them, the character classes of the GPT-2 split pattern, and NFC. Classes come from ICU, so they
// follow the Unicode version of the system's ICU (Debian's libicu).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace hsa::unicode {

// The code point starting at s[i] and its length in bytes, or length 0 when s[i] does not start a valid UTF-8
// sequence (overlong forms, surrogates, code points past U+10FFFF and truncated sequences are all invalid).
struct CodePoint {
  char32_t value = 0;
  int length = 0;
};
CodePoint decode_utf8(std::string_view s, size_t i);

// The classes the GPT-2 split pattern distinguishes: \p{L}, \p{N}, \s (Unicode White_Space, as Oniguruma
// and so the Rust `tokenizers` crate read \s), and everything else.
enum class CharClass : uint8_t { letter, number, space, other };
CharClass char_class(char32_t c);

// NFC of `text`. Only maximal valid UTF-8 runs are normalized; invalid bytes are copied through unchanged.
std::string nfc(std::string_view text);

}  // namespace hsa::unicode

// The byte-level alphabet of GPT-2 style BPE: each of the 256 bytes is shown as one printable Unicode
// character (printable Latin-1 bytes as themselves, the others as U+0100 onwards in byte order), so every
// token of a tokenizer.json vocabulary is a readable string and any byte string can be tokenized.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace hsa::byte_level {

// The character byte `b` is shown as.
char32_t char_of_byte(unsigned char b);
// The byte shown as `c`, or nothing when `c` is not in the alphabet.
std::optional<unsigned char> byte_of_char(char32_t c);

// `bytes` shown in the alphabet (UTF-8), and back. to_bytes returns nothing when `shown` is not valid UTF-8 or
// holds a character outside the alphabet.
std::string to_alphabet(std::string_view bytes);
std::optional<std::string> to_bytes(std::string_view shown);

// The UTF-8 encoding of one code point.
std::string utf8(char32_t c);

}  // namespace hsa::byte_level

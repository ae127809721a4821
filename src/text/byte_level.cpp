#include "text/byte_level.h"

#include "text/unicode_text.h"

namespace hsa::byte_level {

namespace {

bool shown_as_itself(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

struct Alphabet {
  std::array<char32_t, 256> char_of{};
  std::array<std::string, 256> utf8_of{};
  Alphabet() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      char_of[b] = shown_as_itself(b) ? static_cast<char32_t>(b) : next++;
      utf8_of[b] = utf8(char_of[b]);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

std::string utf8(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (c >> 6)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (c >> 12)));
    s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (c >> 18)));
    s.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
  return s;
}

char32_t char_of_byte(unsigned char b) { return alphabet().char_of[b]; }

std::optional<unsigned char> byte_of_char(char32_t c) {
  if (c < 256 && shown_as_itself(static_cast<int>(c))) return static_cast<unsigned char>(c);
  if (c >= 256 && c < 256 + 68) {  // 68 bytes are not shown as themselves
    for (int b = 0; b < 256; ++b)
      if (alphabet().char_of[b] == c) return static_cast<unsigned char>(b);
  }
  return std::nullopt;
}

std::string to_alphabet(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += alphabet().utf8_of[static_cast<unsigned char>(c)];
  return out;
}

std::optional<std::string> to_bytes(std::string_view shown) {
  std::string out;
  for (size_t i = 0; i < shown.size();) {
    unicode::CodePoint cp = unicode::decode_utf8(shown, i);
    if (cp.length == 0) return std::nullopt;
    std::optional<unsigned char> b = byte_of_char(cp.value);
    if (!b) return std::nullopt;
    out.push_back(static_cast<char>(*b));
    i += cp.length;
  }
  return out;
}

}  // namespace hsa::byte_level

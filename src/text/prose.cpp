#include "text/prose.h"

#include <cstdint>

namespace hsa::data {
namespace {

// Decodes one UTF-8 sequence at s[i]; returns its length (0 when invalid) and stores the code point.
size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  cp = len == 1 ? b : b & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c >> 6) != 0x2) return 0;
    cp = (cp << 6) | (c & 0x3F);
  }
  constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};  // shortest form only
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// ASCII replacement of a non-ASCII code point; nullopt when it has none.
std::optional<std::string_view> ascii_for(uint32_t cp) {
  switch (cp) {
    case 0xA0: case 0x2002: case 0x2003: case 0x2009: case 0x202F: return " ";
    case 0xAD: case 0xB6: case 0x200B: case 0x2022: case 0xB7: return "";
    case 0x2018: case 0x2019: case 0x201A: case 0x2032: return "'";
    case 0x201C: case 0x201D: case 0x201E: case 0x2033: case 0xAB: case 0xBB: return "\"";
    case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014: case 0x2015: case 0x2212: return "-";
    case 0x2026: return "...";
    case 0xD7: return "x";
    default: return std::nullopt;
  }
}

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool is_code_symbol(char c) {
  static constexpr std::string_view kSymbols = "{}[]<>=_|\\/#$%^&*~`@+";
  return kSymbols.find(c) != std::string_view::npos;
}

}  // namespace

std::optional<std::string> ascii_line(std::string_view line) {
  std::string mapped;
  mapped.reserve(line.size());
  for (size_t i = 0; i < line.size();) {
    const auto b = static_cast<unsigned char>(line[i]);
    if (b < 0x80) {
      if (b == '\t' || b == '\r' || b == '\n' || b == '\f' || b == '\v') {
        mapped += ' ';
      } else if (b < 0x20 || b == 0x7F) {
        return std::nullopt;
      } else {
        mapped += static_cast<char>(b);
      }
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t len = decode_utf8(line, i, cp);
    if (len == 0) return std::nullopt;
    std::optional<std::string_view> ascii = ascii_for(cp);
    if (!ascii) return std::nullopt;
    mapped += *ascii;
    i += len;
  }
  std::string out;
  out.reserve(mapped.size());
  bool space = false;
  for (char c : mapped) {
    if (c == ' ') {
      space = !out.empty();
    } else {
      if (space) out += ' ';
      space = false;
      out += c;
    }
  }
  return out;
}

bool is_prose(std::string_view line, const ProseRule& rule) {
  if (line.empty()) return false;
  size_t letters = 0, symbols = 0, non_space = 0, words = 0;
  bool in_word = false;
  for (char c : line) {
    const bool space = c == ' ';
    non_space += !space;
    letters += is_letter(c);
    symbols += is_code_symbol(c);
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  if (letters * 10 < non_space * 6) return false;
  if (symbols * 20 > line.size()) return false;
  if (static_cast<int>(words) < rule.min_words) return false;
  if (rule.sentence_end) {
    size_t end = line.size();
    while (end > 0 && (line[end - 1] == '"' || line[end - 1] == '\'' || line[end - 1] == ')')) --end;
    if (end == 0) return false;
    const char last = line[end - 1];
    if (last != '.' && last != '!' && last != '?' && last != ':') return false;
  }
  return true;
}

}  // namespace hsa::data

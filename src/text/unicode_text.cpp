#include "text/unicode_text.h"

#include <hsa/error.h>

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <array>

namespace hsa::unicode {

CodePoint decode_utf8(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return {b0, 1};
  int length;
  char32_t value, min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2, value = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3, value = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4, value = b0 & 0x07, min = 0x10000;
  } else {
    return {};
  }
  if (i + length > s.size()) return {};
  for (int k = 1; k < length; ++k) {
    const unsigned char b = byte(i + k);
    if ((b & 0xC0) != 0x80) return {};
    value = (value << 6) | (b & 0x3F);
  }
  if (value < min || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return {};
  return {value, length};
}

namespace {

CharClass classify_with_icu(char32_t c) {
  const UChar32 u = static_cast<UChar32>(c);
  if (u_isUWhiteSpace(u)) return CharClass::space;
  switch (u_charType(u)) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return CharClass::letter;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return CharClass::number;
    default:
      return CharClass::other;
  }
}

// Latin-1 is by far the most common range: a table saves the ICU calls there.
const std::array<CharClass, 256>& latin1_classes() {
  static const std::array<CharClass, 256> table = [] {
    std::array<CharClass, 256> t{};
    for (char32_t c = 0; c < 256; ++c) t[c] = classify_with_icu(c);
    return t;
  }();
  return table;
}

}  // namespace

CharClass char_class(char32_t c) {
  if (c < 256) return latin1_classes()[c];
  return classify_with_icu(c);
}

std::string nfc(std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = icu::Normalizer2::getNFCInstance(status);
  HSA_CHECK(U_SUCCESS(status), "nfc: ICU has no NFC normalizer: {}", u_errorName(status));
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t end = i;
    while (end < text.size()) {
      CodePoint cp = decode_utf8(text, end);
      if (cp.length == 0) break;
      end += cp.length;
    }
    if (end > i) {
      const std::string_view run = text.substr(i, end - i);
      icu::UnicodeString normalized = normalizer->normalize(
          icu::UnicodeString::fromUTF8(icu::StringPiece(run.data(), static_cast<int32_t>(run.size()))), status);
      HSA_CHECK(U_SUCCESS(status), "nfc: ICU normalization failed: {}", u_errorName(status));
      normalized.toUTF8String(out);
      i = end;
    } else {
      out.push_back(text[i++]);  // an invalid byte stays as it is
    }
  }
  return out;
}

}  // namespace hsa::unicode

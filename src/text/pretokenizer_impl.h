// The scanner behind split_gpt2 (text/pretokenizer.h); a template so the per-piece callback inlines.
#pragma once
#include "text/unicode_text.h"

#include <string_view>

namespace hsa {

namespace pretokenizer_detail {

// Class of the character at s[i], with its length; length 0 for an invalid byte or the end of the text, which
// both end every run.
struct Char {
  unicode::CharClass cls;
  int length;
};
inline Char char_at(std::string_view s, size_t i) {
  if (i >= s.size()) return {unicode::CharClass::other, 0};
  const unsigned char b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return {unicode::char_class(b), 1};
  unicode::CodePoint cp = unicode::decode_utf8(s, i);
  if (cp.length == 0) return {unicode::CharClass::other, 0};
  return {unicode::char_class(cp.value), cp.length};
}

// The end of the run of `cls` characters starting at i.
inline size_t run_end(std::string_view s, size_t i, unicode::CharClass cls) {
  for (;;) {
    Char c = char_at(s, i);
    if (c.length == 0 || c.cls != cls) return i;
    i += c.length;
  }
}

// Length of a contraction ('s 't 're 've 'm 'll 'd) at s[i] == '\'', or 0.
inline size_t contraction_length(std::string_view s, size_t i) {
  if (i + 1 >= s.size()) return 0;
  const char a = s[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= s.size()) return 0;
  const char b = s[i + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

}  // namespace pretokenizer_detail

template <class Emit>
void split_gpt2(std::string_view s, Emit&& emit) {
  using namespace pretokenizer_detail;
  using unicode::CharClass;
  size_t i = 0;
  while (i < s.size()) {
    const Char c = char_at(s, i);
    if (c.length == 0) {  // an invalid byte
      emit(s.substr(i, 1));
      i += 1;
      continue;
    }
    if (s[i] == '\'') {
      if (size_t n = contraction_length(s, i)) {
        emit(s.substr(i, n));
        i += n;
        continue;
      }
    }
    size_t start = i, end;
    if (c.cls != CharClass::space) {
      end = run_end(s, i, c.cls);  // \p{L}+, \p{N}+ or [^\s\p{L}\p{N}]+
    } else {
      const Char next = s[i] == ' ' ? char_at(s, i + 1) : Char{CharClass::space, 0};
      if (next.length != 0 && next.cls != CharClass::space) {
        end = run_end(s, i + 1, next.cls);  // " ?" followed by a letter, number or other run
      } else {
        // \s+(?!\S): the whole whitespace run when it ends the text, else all but its last character, which
        // then starts the next piece (alone, or as the " " of " ?\p{L}+"); a single one falls to \s+.
        size_t last = i, j = i;
        for (;;) {
          Char w = char_at(s, j);
          if (w.length == 0 || w.cls != CharClass::space) break;
          last = j;
          j += w.length;
        }
        const bool at_end = char_at(s, j).length == 0;
        end = (at_end || last == i) ? j : last;
      }
    }
    emit(s.substr(start, end - start));
    i = end;
  }
}

}  // namespace hsa

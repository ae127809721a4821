// Line-level cleaning for the filler corpus: plain ASCII prose, without code, listings or ASCII art.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace hsa::data {

// `line` as ASCII with whitespace runs collapsed to one space and the ends trimmed. Typographic UTF-8 is
// mapped to ASCII (curly quotes to ' and ", dashes to -, ellipsis to ..., no-break and thin spaces to a
// space; pilcrow, soft hyphen and bullets are removed). nullopt when anything else is left: other non-ASCII
// characters, invalid UTF-8 or control characters (the line is dropped rather than mangled).
std::optional<std::string> ascii_line(std::string_view line);

struct ProseRule {
  int min_words = 1;          // space-separated words
  bool sentence_end = false;  // must end like a sentence: . ! ? : or a closing quote/bracket after one
};

// Whether a cleaned line reads as prose: non-empty, letters are at least 60% of its non-space characters,
// code symbols ({}[]<>=_|\/#$%^&*~`@+) at most 5% of its characters, and `rule` holds.
bool is_prose(std::string_view line, const ProseRule& rule);

}  // namespace hsa::data

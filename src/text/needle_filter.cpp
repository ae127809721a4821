#include "text/needle_filter.h"

#include <array>

namespace hsa::data {
namespace {

constexpr std::array<std::string_view, 5> kPhrases = {"pass key", "passkey", "special magic", "magic number",
                                                      "magic uuid"};

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool contains_ci(std::string_view text, std::string_view phrase) {  // phrase in lower case
  for (size_t i = 0; i + phrase.size() <= text.size(); ++i) {
    size_t k = 0;
    while (k < phrase.size() && lower(text[i + k]) == phrase[k]) ++k;
    if (k == phrase.size()) return true;
  }
  return false;
}

}  // namespace

bool looks_like_needle(std::string_view line) {
  if (line.find("VAR ") != std::string_view::npos) return true;
  for (std::string_view phrase : kPhrases)
    if (contains_ci(line, phrase)) return true;
  int run = 0;
  for (char c : line) {
    run = c >= '0' && c <= '9' ? run + 1 : 0;
    if (run >= 5) return true;
  }
  return false;
}

}  // namespace hsa::data

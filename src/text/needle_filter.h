// Keeps the synthetic tasks unambiguous when their haystack is natural text: a filler line must not look like
// a needle or an answer of the tasks in src/train/tasks.cpp and src/eval/ruler.cpp.
#pragma once
#include <string_view>

namespace hsa::data {

// True when `line` holds a phrase the needles and questions are built from ("pass key", "passkey", "special
// magic", "magic number", "magic uuid", case-insensitive; "VAR " as written), or a run of 5 or more digits
// (the answers are 5- and 7-digit numbers). Such lines are left out of the filler corpus.
bool looks_like_needle(std::string_view line);

}  // namespace hsa::data

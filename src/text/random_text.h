// Random pieces of synthetic text shared by the filler generator, the synthetic tasks and RULER. Each helper makes
// a fixed sequence of rng draws, so a seed gives the same text whichever generator asks.
#pragma once
#include <hsa/random.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace hsa {

// `count` decimal digits, the first one non-zero so the string reads as a number.
std::string random_digits(Rng& rng, int count);

// `count` lower-case hex digits.
std::string random_hex(Rng& rng, int count);

// One word of a fixed list, uniformly (one draw).
template <size_t N> std::string_view pick_word(const std::string_view (&words)[N], Rng& rng) {
  return words[rng.below(N)];
}

}  // namespace hsa

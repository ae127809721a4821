#include "text/random_text.h"

namespace hsa {

std::string random_digits(Rng& rng, int count) {
  std::string s(1, static_cast<char>('1' + rng.below(9)));
  for (int i = 1; i < count; ++i) s.push_back(static_cast<char>('0' + rng.below(10)));
  return s;
}

std::string random_hex(Rng& rng, int count) {
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < count; ++i) s.push_back(kHex[rng.below(16)]);
  return s;
}

}  // namespace hsa

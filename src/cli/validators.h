// Range checks for flags that CLI11 does not ship: like CLI::PositiveNumber, they reject a value while the
// command line is parsed, so the error names the flag and the command exits 2.
#pragma once
#include <CLI/CLI.hpp>

#include <string>

namespace hsa::cli {

// A number that passes `ok`; the message says what was expected ("> 0") and what came.
template <class Ok> CLI::Validator number_that(const char* expected, Ok ok) {
  return CLI::Validator(
      [expected, ok](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v)) return "Value " + text + " is not a number";
        if (!ok(v)) return "Value " + text + " must be " + expected;
        return {};
      },
      expected);
}

// Counts and sizes that must be at least 1 (CLI::PositiveNumber of this CLI11 prints the double range).
inline CLI::Validator positive_number() {
  return number_that("> 0", [](double v) { return v > 0; });
}
inline CLI::Validator non_negative_number() {
  return number_that(">= 0", [](double v) { return v >= 0; });
}

// A number in (0, 1]: a probability mass that must keep something (nucleus sampling's top-p).
inline CLI::Validator probability_above_zero() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v)) return "Value " + text + " is not a number";
        if (!(v > 0 && v <= 1)) return "Value " + text + " not in (0, 1]";
        return {};
      },
      "in (0, 1]");
}

}  // namespace hsa::cli

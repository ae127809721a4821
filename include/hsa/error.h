// Errors: every failed check throws hsa::Error with a message that names the op and the values involved.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace hsa {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A value the user chose is rejected (a flag out of range, options that contradict each other, an output that
// exists): the caller must change the command, not retry it. The CLI exits 2 for these, 1 for every other Error.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

template <class... Args>
[[noreturn]] void fail_argument(fmt::format_string<Args...> format, Args&&... args) {
  throw InvalidArgument(fmt::format(format, std::forward<Args>(args)...));
}

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace hsa

// HSA_CHECK(cond, "op: what went wrong {}", value): throws hsa::Error when cond is false.
#define HSA_CHECK(cond, ...)        \
  do {                              \
    if (!(cond)) {                  \
      ::hsa::fail(__VA_ARGS__);     \
    }                               \
  } while (0)

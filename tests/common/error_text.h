// Capturing an op's error message, for tests that check what a user would read.
#pragma once
#include <hsa/error.h>

#include <gtest/gtest.h>

#include <string>

namespace hsa::testing {

// The message of the hsa::Error that fn throws; a test failure (and "") when it throws none.
template <class Fn> std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an hsa::Error";
  return "";
}

inline bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace hsa::testing

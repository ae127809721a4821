// A one-line progress display for long runs: done/total, rate, ETA and a caller-supplied status.
// On a terminal it redraws one line; otherwise it prints a line at most every `min_interval_s` seconds.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace hsa {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit = "it", double min_interval_s = 2.0);
  void update(int64_t done, const std::string& status = "");
  void finish(const std::string& status = "");
  double elapsed_seconds() const;

 private:
  std::string label_, unit_;
  int64_t total_;
  double min_interval_s_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_print_;
  void print(int64_t done, const std::string& status, bool final);
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12.3s"

// Wall seconds since t0 (steady clock).
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace hsa

#include "util/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace hsa {

std::string format_duration(double s) {
  if (s < 60) return fmt::format("{:.1f}s", s);
  int64_t t = static_cast<int64_t>(s);
  if (t < 3600) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
}

Progress::Progress(std::string label, int64_t total, std::string unit, double min_interval_s)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), min_interval_s_(min_interval_s),
      tty_(isatty(fileno(stderr))), start_(std::chrono::steady_clock::now()), last_print_(start_) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, const std::string& status) {
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_print_).count();
  if (!tty_ && since < min_interval_s_ && done < total_) return;
  if (tty_ && since < 0.1 && done < total_) return;
  last_print_ = now;
  print(done, status, false);
}

void Progress::finish(const std::string& status) { print(total_, status, true); }

void Progress::print(int64_t done, const std::string& status, bool final) {
  double elapsed = elapsed_seconds();
  double rate = elapsed > 0 ? done / elapsed : 0;
  double eta = rate > 0 ? (total_ - done) / rate : 0;
  int width = 24;
  int filled = total_ > 0 ? static_cast<int>(width * done / total_) : width;
  std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
  std::string line = fmt::format("{} [{}] {}/{} {} | {:.2f} {}/s | {} {}{}{}", label_, bar, done, total_, unit_, rate,
                                 unit_, final ? "took" : "ETA", format_duration(final ? elapsed : eta),
                                 status.empty() ? "" : "| ", status);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace hsa

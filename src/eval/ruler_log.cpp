#include "eval/ruler_log.h"

#include "util/file_util.h"

#include <hsa/error.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace hsa::eval {

std::string RulerLog::key(const std::string& task, int64_t length, int64_t sample, uint64_t seed) {
  return fmt::format("{}/{}/{}/{}", task, length, sample, seed);
}

RulerLog::RulerLog(const std::string& path, const nlohmann::json& run, bool resume) : path_(path) {
  std::string kept = nlohmann::json{{"run", run}}.dump() + "\n";
  if (resume) {
    HSA_CHECK(std::filesystem::exists(path), "ruler --resume: no '{}' to resume from", path);
    std::istringstream in(read_regular_file(path, "ruler log"));
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (first) {
        HSA_CHECK(!j.is_discarded() && j.contains("run"), "ruler --resume: '{}' does not start with a run line",
                  path);
        for (const auto& [k, v] : run.items())
          if (j["run"].value(k, nlohmann::json()) != v)
            fail_argument("ruler --resume: '{}' was written with {} {}, this command has {}", path, k,
                          j["run"].value(k, nlohmann::json()).dump(), v.dump());
        first = false;
        continue;
      }
      // Only a last line can be torn (each line is written whole and fsync'd before the next).
      if (j.is_discarded() || !j.contains("task") || !j.contains("score")) continue;
      done_[key(j["task"].get<std::string>(), j["length"].get<int64_t>(), j["sample"].get<int64_t>(),
                j["seed"].get<uint64_t>())] = j;
      kept += j.dump() + "\n";
    }
  }
  write_file_atomic(path, kept);
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) fail("ruler: cannot open '{}' for appending: {}", path, std::strerror(errno));
}

RulerLog::~RulerLog() {
  if (fd_ >= 0) ::close(fd_);
}

const nlohmann::json* RulerLog::find(const std::string& task, int64_t length, int64_t sample, uint64_t seed) const {
  auto it = done_.find(key(task, length, sample, seed));
  return it == done_.end() ? nullptr : &it->second;
}

void RulerLog::append(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  size_t written = 0;
  while (written < line.size()) {
    ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      fail("ruler: cannot append to '{}' ({}); the samples recorded before are kept there, continue with --resume",
           path_, n < 0 ? std::strerror(errno) : "no space written");
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0) fail("ruler: cannot fsync '{}': {}", path_, std::strerror(errno));
}

}  // namespace hsa::eval

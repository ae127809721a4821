// ruler.jsonl: the record of a RULER run written as it goes, so that a run that is interrupted or fails (a full
// disk, a lost machine) keeps every sample it measured, and `hsa ruler --resume` skips them. The first line
// describes the run ({"run": {...}}: what decides the samples and answers); every later line is one sample's
// record (task, length, sample, seed, output, score, ...). Each line is written whole and fsync'd.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace hsa::eval {

class RulerLog {
 public:
  // Creates `path` with the `run` line (replacing any file there), or, with `resume`, reads the records already
  // in it: the run line must equal `run` (else hsa::InvalidArgument naming the differing key), a torn last line
  // from an interruption is dropped, and the file is rewritten with what remains before new records follow.
  RulerLog(const std::string& path, const nlohmann::json& run, bool resume);
  ~RulerLog();
  RulerLog(const RulerLog&) = delete;
  RulerLog& operator=(const RulerLog&) = delete;

  // The finished record of (task, length, sample, seed), or nullptr.
  const nlohmann::json* find(const std::string& task, int64_t length, int64_t sample, uint64_t seed) const;
  // Appends one record as a line and fsyncs; throws hsa::Error naming the file when the write fails.
  void append(const nlohmann::json& record);
  int64_t resumed() const { return static_cast<int64_t>(done_.size()); }

 private:
  static std::string key(const std::string& task, int64_t length, int64_t sample, uint64_t seed);
  std::string path_;
  int fd_ = -1;
  std::map<std::string, nlohmann::json> done_;
};

}  // namespace hsa::eval

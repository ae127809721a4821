#include "train/run_dir.h"

#include <hsa/error.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hsa {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view kCheckpointsPrefix = "checkpoints/";
}  // namespace

std::string escape_for_message(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20 || c >= 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

bool is_checkpoint_name(std::string_view name) {
  if (name.substr(0, kCheckpointsPrefix.size()) != kCheckpointsPrefix) return false;
  std::string_view leaf = name.substr(kCheckpointsPrefix.size());
  if (leaf.empty() || leaf == "." || leaf == "..") return false;
  if (leaf.size() >= 4 && leaf.substr(leaf.size() - 4) == ".tmp") return false;
  for (char c : leaf)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

std::string latest_checkpoint_dir(const std::string& run_dir) {
  const fs::path latest = fs::path(run_dir) / "latest";
  std::ifstream in(latest, std::ios::binary);
  HSA_CHECK(in.good(), "run directory '{}': cannot read '{}'", run_dir, latest.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (!text.empty() && text.back() == '\n') text.pop_back();
  HSA_CHECK(!text.empty(), "'{}' is empty; it should name a checkpoint as 'checkpoints/<name>'", latest.string());
  HSA_CHECK(is_checkpoint_name(text),
            "'{}' holds \"{}\", not a checkpoint of this run: it must be one line 'checkpoints/<name>' (letters, "
            "digits, '.', '_', '-')",
            latest.string(), escape_for_message(text));
  const fs::path dir = fs::path(run_dir) / text;
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(dir, ec);
  HSA_CHECK(fs::is_directory(st), "'{}' names '{}', which is {}", latest.string(), dir.string(),
            fs::is_symlink(st) ? "a symlink (a checkpoint must be a directory of this run)"
            : fs::exists(st)   ? "not a directory"
                               : "missing");
  // checkpoints/ itself could be a symlink into another run: compare real paths.
  const fs::path real_parent = fs::canonical(dir, ec).parent_path();
  const fs::path own = fs::weakly_canonical(fs::path(run_dir)) / "checkpoints";
  HSA_CHECK(!ec && real_parent == own, "'{}' names '{}', which lies outside the run's own '{}'", latest.string(),
            dir.string(), own.string());
  return dir.string();
}

std::vector<std::string> existing_run_outputs(const std::string& run_dir) {
  std::vector<std::string> found;
  const fs::path dir(run_dir);
  for (const char* name : {"latest", "train_log.jsonl", "train_options.json"})
    if (fs::exists(fs::symlink_status(dir / name))) found.push_back(name);
  std::error_code ec;
  if (fs::is_directory(dir / "checkpoints"))
    for (const fs::directory_entry& entry : fs::directory_iterator(dir / "checkpoints", ec))
      found.push_back("checkpoints/" + entry.path().filename().string());
  return found;
}

RunLock::RunLock(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "train.lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("train: cannot open the lock file '{}': {}", path, std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char holder[64] = {};
    ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    ::close(fd_);
    fd_ = -1;
    std::string who = n > 0 ? std::string(holder, static_cast<size_t>(n)) : std::string();
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    if (err == EWOULDBLOCK)
      fail("train: run directory '{}' is in use by another trainer ({}); wait for it to finish or choose another "
           "--out",
           run_dir, who.empty() ? "pid unknown" : escape_for_message(who));
    fail("train: cannot lock '{}': {}", path, std::strerror(err));
  }
  const std::string me = fmt::format("pid {}\n", ::getpid());
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    // The lock holds without the pid; only the message of a second trainer would lack it.
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

}  // namespace hsa

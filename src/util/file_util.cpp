#include "util/file_util.h"

#include <hsa/error.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hsa {

namespace {
std::string errno_str() { return std::strerror(errno); }
}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create '{}': {}", tmp, errno_str());
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = errno_str();
      ::close(fd);
      ::unlink(tmp.c_str());
      fail("cannot write '{}' ({} of {} bytes written): {}", tmp, written, bytes.size(), why);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    std::string why = errno_str();
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("cannot fsync '{}': {}", tmp, why);
  }
  if (::close(fd) != 0) {
    std::string why = errno_str();
    ::unlink(tmp.c_str());
    fail("cannot close '{}': {}", tmp, why);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = errno_str();
    ::unlink(tmp.c_str());
    fail("cannot rename '{}' to '{}': {}", tmp, path, why);
  }
  // Make the rename durable; failure here is not fatal for correctness of the content.
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}': {}", path, errno_str());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("cannot read '{}'", path);
  return ss.str();
}

}  // namespace hsa

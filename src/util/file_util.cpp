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

int open_regular_file(const std::string& path, const std::string& what) {
  // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever, before fstat could refuse it.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("{} '{}': cannot open: {}", what, path, errno_str());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string why = errno_str();
    ::close(fd);
    fail("{} '{}': cannot stat: {}", what, path, why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("{} '{}' is not a regular file (a {})", what, path,
         S_ISDIR(st.st_mode) ? "directory" : S_ISFIFO(st.st_mode) ? "FIFO" : S_ISCHR(st.st_mode) ? "character device"
                                                       : S_ISSOCK(st.st_mode) ? "socket" : "special file");
  }
  // Reads of a regular file never block; clear the flag so later reads behave as usual.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

std::string read_regular_file(const std::string& path, const std::string& what) {
  int fd = open_regular_file(path, what);
  std::string bytes;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string why = errno_str();
      ::close(fd);
      fail("{} '{}': cannot read: {}", what, path, why);
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return bytes;
}

}  // namespace hsa

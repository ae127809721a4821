#include "util/scratch_file.h"

#include <hsa/error.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hsa {

namespace {
std::string errno_str(int e) { return std::strerror(e); }
}  // namespace

ScratchFile::ScratchFile(const std::string& dir, const std::string& what, size_t segment_bytes) : what_(what) {
  struct stat st {};
  if (dir.empty() || ::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    fail_argument("{}: '{}' is not an existing directory", what, dir);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  segment_bytes_ = (std::max<size_t>(segment_bytes, 1) + page - 1) / page * page;
  std::string pattern = dir + (dir.back() == '/' ? "" : "/") + "hsa-pages-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    fail_argument("{}: cannot create a directory in '{}': {}", what, dir, errno_str(errno));
  own_dir_ = buf.data();
  path_ = own_dir_ + "/pages.bin";
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    int e = errno;
    remove_created();
    fail("{}: cannot create '{}': {}", what, path_, errno_str(e));
  }
}

ScratchFile::~ScratchFile() { remove_created(); }

void ScratchFile::remove_created() noexcept {
  for (char* s : segments_) ::munmap(s, segment_bytes_);
  segments_.clear();
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(path_.c_str());
  }
  if (!own_dir_.empty()) ::rmdir(own_dir_.c_str());  // only the directory we created, and only when empty
  own_dir_.clear();
}

void ScratchFile::grow() {
  const size_t old_size = size(), new_size = old_size + segment_bytes_;
  int e = ::posix_fallocate(fd_, static_cast<off_t>(old_size), static_cast<off_t>(segment_bytes_));
  if (e != 0) {
    (void)::ftruncate(fd_, static_cast<off_t>(old_size));  // give back a partial reservation
    fail("{}: cannot grow '{}' from {} to {} bytes: {}", what_, path_, old_size, new_size, errno_str(e));
  }
  void* p = ::mmap(nullptr, segment_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, static_cast<off_t>(old_size));
  if (p == MAP_FAILED) fail("{}: cannot map {} bytes of '{}': {}", what_, segment_bytes_, path_, errno_str(errno));
  segments_.push_back(static_cast<char*>(p));
}

char* ScratchFile::at(size_t offset, size_t bytes) {
  const size_t seg = offset / segment_bytes_, within = offset % segment_bytes_;
  HSA_CHECK(within + bytes <= segment_bytes_, "ScratchFile: {} bytes at offset {} straddle a {}-byte segment of '{}'",
            bytes, offset, segment_bytes_, path_);
  while (segments_.size() <= seg) grow();
  return segments_[seg] + within;
}

}  // namespace hsa

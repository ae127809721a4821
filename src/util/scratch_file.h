// A growable, memory-mapped scratch file for data that outgrows memory (the disk tier of the chunk memory,
// docs/architecture.md "Chunk memory tiers"). The program creates a fresh directory of its own inside the
// directory it is given (mkdtemp, so it never reuses or overwrites anything there), keeps one file in it, and
// removes exactly that file and that directory when the object dies. Nothing else under the given directory is
// ever touched.
//
// Space is reserved with posix_fallocate before it is mapped, so a full disk is reported as an error when the
// file grows, never as a SIGBUS on a later write through the mapping. The file grows in fixed-size mapped
// segments: an address handed out stays valid for the object's lifetime (no remapping).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace hsa {

class ScratchFile {
 public:
  // `dir` must be an existing, writable directory; `what` names the owner in error messages ("--disk-dir").
  // segment_bytes: how much each growth reserves and maps (rounded up to the system page size).
  ScratchFile(const std::string& dir, const std::string& what, size_t segment_bytes);
  ~ScratchFile();
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // The address of bytes [offset, offset + bytes) of the file; grows the file (by whole segments) when needed.
  // A range never straddles two segments: callers keep records inside one (bytes <= segment_bytes and records
  // of one size that divides it).
  char* at(size_t offset, size_t bytes);
  size_t size() const { return segments_.size() * segment_bytes_; }  // bytes reserved on disk
  const std::string& path() const { return path_; }                   // the file
  const std::string& own_dir() const { return own_dir_; }              // the directory created for it

 private:
  std::string what_, own_dir_, path_;
  size_t segment_bytes_;
  int fd_ = -1;
  std::vector<char*> segments_;
  void grow();
  void remove_created() noexcept;
};

}  // namespace hsa

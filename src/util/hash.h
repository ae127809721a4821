// A fast 64-bit content hash for identifying models and checking saved files: XXH3 (libxxhash) when the build
// found it, else FNV-1a (slower, still fine for a checksum). hash_algorithm() names the one in use, so a file
// written by the other kind of build is refused with a clear message instead of a checksum mismatch.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace hsa {

class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(const void* data, size_t bytes);
  void update(std::string_view text) { update(text.data(), text.size()); }
  uint64_t digest() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

uint64_t hash_bytes(const void* data, size_t bytes);
std::string_view hash_algorithm();  // "xxh3" or "fnv1a"
std::string hash_hex(uint64_t hash);  // 16 lower-case hex digits

}  // namespace hsa

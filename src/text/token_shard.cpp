#include "text/token_shard.h"

#include <hsa/error.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace hsa {
namespace {

constexpr char kMagic[8] = {'H', 'S', 'A', 'T', 'O', 'K', 'S', '1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 32;
static_assert(std::endian::native == std::endian::little, "token shards assume a little-endian host");

template <class T> void put(unsigned char* dst, T value) { std::memcpy(dst, &value, sizeof(T)); }
template <class T> T get(const unsigned char* src) {
  T value;
  std::memcpy(&value, src, sizeof(T));
  return value;
}

void write_all(std::FILE* f, const void* data, size_t bytes, const std::string& path) {
  if (bytes != 0 && std::fwrite(data, 1, bytes, f) != bytes)
    fail("write_token_shard: writing {} failed: {}", path, std::strerror(errno));
}

}  // namespace

struct TokenShard::Mapping {
  void* base = nullptr;
  size_t bytes = 0;
  ~Mapping() {
    if (base != nullptr) munmap(base, bytes);
  }
};

void write_token_shard(const std::string& path, std::span<const int32_t> tokens) {
  bool narrow = true;
  for (size_t i = 0; i < tokens.size(); ++i) {
    HSA_CHECK(tokens[i] >= 0, "write_token_shard: {}: token {} at position {} is negative", path, tokens[i], i);
    if (tokens[i] >= 65536) narrow = false;
  }
  TokenShardWriter writer(path, narrow ? 2 : 4);
  writer.append(tokens);
  writer.finish();
}

namespace {
void write_header(std::FILE* f, uint32_t width, uint64_t num_tokens, const std::string& path) {
  unsigned char header[kHeaderBytes] = {};
  std::memcpy(header, kMagic, 8);
  put<uint32_t>(header + 8, kVersion);
  put<uint32_t>(header + 12, width);
  put<uint64_t>(header + 16, num_tokens);
  put<uint64_t>(header + 24, 0);
  write_all(f, header, kHeaderBytes, path);
}
}  // namespace

TokenShardWriter::TokenShardWriter(std::string path, int bytes_per_token)
    : path_(std::move(path)), tmp_(path_ + ".tmp." + std::to_string(::getpid())), bytes_per_token_(bytes_per_token) {
  HSA_CHECK(bytes_per_token == 2 || bytes_per_token == 4, "TokenShardWriter: {}: bytes_per_token {} is not 2 or 4",
            path_, bytes_per_token);
  file_ = std::fopen(tmp_.c_str(), "wb");
  HSA_CHECK(file_ != nullptr, "write_token_shard: cannot create {}: {}", tmp_, std::strerror(errno));
  write_header(file_, static_cast<uint32_t>(bytes_per_token_), 0, tmp_);  // the count is filled in by finish()
}

TokenShardWriter::~TokenShardWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(tmp_.c_str());
  }
}

void TokenShardWriter::append(std::span<const int32_t> tokens) {
  HSA_CHECK(file_ != nullptr, "write_token_shard: {}: append after finish", path_);
  const int64_t limit = bytes_per_token_ == 2 ? 65536 : (int64_t{1} << 31);
  for (size_t i = 0; i < tokens.size(); ++i)
    HSA_CHECK(tokens[i] >= 0 && tokens[i] < limit, "write_token_shard: {}: token {} at position {} is outside [0, {})",
              path_, tokens[i], num_tokens_ + static_cast<int64_t>(i), limit);
  if (bytes_per_token_ == 2) {
    // Convert in chunks so a large shard does not need a second full copy in memory.
    std::vector<uint16_t> chunk;
    for (size_t start = 0; start < tokens.size(); start += 1 << 20) {
      size_t end = std::min(tokens.size(), start + (size_t{1} << 20));
      chunk.assign(tokens.begin() + start, tokens.begin() + end);
      write_all(file_, chunk.data(), chunk.size() * 2, tmp_);
    }
  } else {
    write_all(file_, tokens.data(), tokens.size() * 4, tmp_);
  }
  num_tokens_ += static_cast<int64_t>(tokens.size());
}

void TokenShardWriter::finish() {
  HSA_CHECK(file_ != nullptr, "write_token_shard: {}: finished twice", path_);
  HSA_CHECK(std::fseek(file_, 0, SEEK_SET) == 0, "write_token_shard: seeking in {} failed: {}", tmp_,
            std::strerror(errno));
  write_header(file_, static_cast<uint32_t>(bytes_per_token_), static_cast<uint64_t>(num_tokens_), tmp_);
  HSA_CHECK(std::fflush(file_) == 0, "write_token_shard: flushing {} failed: {}", tmp_, std::strerror(errno));
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) {
    int err = errno;
    std::remove(tmp_.c_str());
    fail("write_token_shard: closing {} failed: {}", tmp_, std::strerror(err));
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    std::remove(tmp_.c_str());
    fail("write_token_shard: renaming {} to {} failed: {}", tmp_, path_, std::strerror(err));
  }
}

TokenShard TokenShard::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  HSA_CHECK(fd >= 0, "TokenShard: cannot open {}: {}", path, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail("TokenShard: cannot stat {}: {}", path, std::strerror(err));
  }
  const size_t file_bytes = static_cast<size_t>(st.st_size);
  if (file_bytes < kHeaderBytes) {
    ::close(fd);
    fail("TokenShard: {} is truncated: {} bytes, smaller than the {}-byte header", path, file_bytes, kHeaderBytes);
  }
  void* base = mmap(nullptr, file_bytes, PROT_READ, MAP_SHARED, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping stays valid after the descriptor closes
  HSA_CHECK(base != MAP_FAILED, "TokenShard: cannot map {}: {}", path, std::strerror(err));
  auto mapping = std::make_shared<Mapping>();
  mapping->base = base;
  mapping->bytes = file_bytes;

  const auto* bytes = static_cast<const unsigned char*>(base);
  HSA_CHECK(std::memcmp(bytes, kMagic, 8) == 0, "TokenShard: {} is not a token shard (magic is not HSATOKS1)", path);
  const uint32_t version = get<uint32_t>(bytes + 8);
  HSA_CHECK(version == kVersion, "TokenShard: {} has version {}, expected {}", path, version, kVersion);
  const uint32_t width = get<uint32_t>(bytes + 12);
  HSA_CHECK(width == 2 || width == 4, "TokenShard: {} has bytes_per_token {}, expected 2 or 4", path, width);
  const uint64_t num_tokens = get<uint64_t>(bytes + 16);
  const uint64_t payload = file_bytes - kHeaderBytes;
  HSA_CHECK(num_tokens <= payload / width && num_tokens * width == payload,
            "TokenShard: {} size mismatch: header says {} tokens x {} bytes = {} bytes, file holds {} after the header"
            "{}",
            path, num_tokens, width, num_tokens * width, payload,
            payload < num_tokens * width ? " (truncated)" : "");

  TokenShard shard;
  shard.mapping_ = std::move(mapping);
  shard.tokens_ = bytes + kHeaderBytes;
  shard.num_tokens_ = static_cast<int64_t>(num_tokens);
  shard.bytes_per_token_ = static_cast<int>(width);
  shard.path_ = path;
  return shard;
}

int32_t TokenShard::operator[](int64_t i) const {
  HSA_CHECK(i >= 0 && i < num_tokens_, "TokenShard: index {} out of range [0, {}) in {}", i, num_tokens_, path_);
  if (bytes_per_token_ == 2) return get<uint16_t>(tokens_ + 2 * i);
  return get<int32_t>(tokens_ + 4 * i);
}

void TokenShard::read(int64_t start, int64_t count, int32_t* out) const {
  HSA_CHECK(start >= 0 && count >= 0 && start <= num_tokens_ && count <= num_tokens_ - start,
            "TokenShard::read: range [{}, {}) outside [0, {}) in {}", start, start + count, num_tokens_, path_);
  if (bytes_per_token_ == 4) {
    std::memcpy(out, tokens_ + 4 * start, static_cast<size_t>(count) * 4);
    return;
  }
  for (int64_t i = 0; i < count; ++i) out[i] = get<uint16_t>(tokens_ + 2 * (start + i));
}

}  // namespace hsa

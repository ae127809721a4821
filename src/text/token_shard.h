// Token shards: one flat file of token ids, memory-mapped for training.
// Layout (little-endian): 32-byte header
//   [0, 8)   magic "HSATOKS1"
//   [8, 12)  u32 version = 1
//   [12, 16) u32 bytes_per_token (2 or 4)
//   [16, 24) u64 num_tokens
//   [24, 32) u64 reserved (0)
// then num_tokens ids of bytes_per_token each (uint16 or int32).
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>

namespace hsa {

// Writes `tokens` as a shard, uint16 when every id is in [0, 65536), int32 otherwise. Written to a
// temporary file in the same directory and renamed, so readers never see a half-written shard.
// Negative ids are an error.
void write_token_shard(const std::string& path, std::span<const int32_t> tokens);

// Writes a shard a piece at a time (for corpora larger than memory): tokens go to a temporary file beside
// `path`, and finish() fills in the header and renames it into place. A writer destroyed unfinished removes
// its temporary file, so `path` is never left half-written. Ids must lie in [0, 65536) when bytes_per_token is 2.
class TokenShardWriter {
 public:
  TokenShardWriter(std::string path, int bytes_per_token);
  ~TokenShardWriter();
  TokenShardWriter(const TokenShardWriter&) = delete;
  TokenShardWriter& operator=(const TokenShardWriter&) = delete;
  void append(std::span<const int32_t> tokens);
  void finish();
  int64_t size() const { return num_tokens_; }

 private:
  std::string path_, tmp_;
  int bytes_per_token_;
  std::FILE* file_ = nullptr;
  int64_t num_tokens_ = 0;
};

class TokenShard {
 public:
  // Maps the file read-only; a truncated file, wrong magic/version/width, or a size that does not
  // match num_tokens throws hsa::Error naming the file.
  static TokenShard open(const std::string& path);

  int64_t size() const { return num_tokens_; }
  int bytes_per_token() const { return bytes_per_token_; }
  const std::string& path() const { return path_; }
  int32_t operator[](int64_t i) const;  // bounds-checked
  // Copies tokens [start, start + count) into out; the range must lie inside the shard.
  void read(int64_t start, int64_t count, int32_t* out) const;

 private:
  struct Mapping;
  std::shared_ptr<const Mapping> mapping_;  // shared by copies; unmapped when the last goes
  const unsigned char* tokens_ = nullptr;
  int64_t num_tokens_ = 0;
  int bytes_per_token_ = 0;
  std::string path_;
};

}  // namespace hsa

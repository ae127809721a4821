#include "text/token_shard.h"

#include <hsa/error.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace hsa;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("hsa_shard_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::vector<char> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void expect_error_mentioning(const std::string& path, const std::string& what) {
  try {
    TokenShard::open(path);
    FAIL() << "expected an error for " << what;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

}  // namespace

TEST(TokenShard, RoundTripNarrow) {
  std::string path = temp_path("narrow.bin");
  std::vector<int32_t> tokens = {0, 1, 255, 256, 259, 65535, 7, 7, 42};
  write_token_shard(path, tokens);
  EXPECT_EQ(std::filesystem::file_size(path), 32u + 2 * tokens.size());
  TokenShard shard = TokenShard::open(path);
  EXPECT_EQ(shard.bytes_per_token(), 2);
  ASSERT_EQ(shard.size(), static_cast<int64_t>(tokens.size()));
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(shard[static_cast<int64_t>(i)], tokens[i]);
  std::vector<int32_t> part(4);
  shard.read(3, 4, part.data());
  EXPECT_EQ(part, (std::vector<int32_t>{256, 259, 65535, 7}));
  EXPECT_THROW(shard[9], Error);
  EXPECT_THROW(shard.read(7, 3, part.data()), Error);
  std::remove(path.c_str());
}

TEST(TokenShard, RoundTripWideAndMoveKeepsMapping) {
  std::string path = temp_path("wide.bin");
  std::vector<int32_t> tokens = {1, 70000, 3, 1 << 30};
  write_token_shard(path, tokens);
  TokenShard moved;
  {
    TokenShard shard = TokenShard::open(path);
    EXPECT_EQ(shard.bytes_per_token(), 4);
    TokenShard copy = shard;
    moved = std::move(shard);
  }
  std::remove(path.c_str());  // the mapping outlives the name
  ASSERT_EQ(moved.size(), 4);
  std::vector<int32_t> all(4);
  moved.read(0, 4, all.data());
  EXPECT_EQ(all, tokens);
}

TEST(TokenShard, EmptyShard) {
  std::string path = temp_path("empty.bin");
  write_token_shard(path, std::vector<int32_t>{});
  EXPECT_EQ(TokenShard::open(path).size(), 0);
  std::remove(path.c_str());
}

TEST(TokenShard, NegativeTokensRejected) {
  std::string path = temp_path("neg.bin");
  std::vector<int32_t> tokens = {1, -5};
  EXPECT_THROW(write_token_shard(path, tokens), Error);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(TokenShard, CorruptFilesRejectedClearly) {
  std::string good = temp_path("good.bin");
  std::vector<int32_t> tokens(100);
  for (int i = 0; i < 100; ++i) tokens[i] = i * 3;
  write_token_shard(good, tokens);
  std::vector<char> bytes = slurp(good);

  std::string bad = temp_path("bad.bin");
  spit(bad, std::vector<char>(bytes.begin(), bytes.begin() + 20));
  expect_error_mentioning(bad, "truncated");

  spit(bad, std::vector<char>(bytes.begin(), bytes.end() - 2));
  expect_error_mentioning(bad, "size mismatch");

  std::vector<char> longer = bytes;
  longer.push_back(0);
  longer.push_back(0);
  spit(bad, longer);
  expect_error_mentioning(bad, "size mismatch");

  std::vector<char> magic = bytes;
  magic[0] = 'X';
  spit(bad, magic);
  expect_error_mentioning(bad, "magic");

  std::vector<char> width = bytes;
  width[12] = 3;
  spit(bad, width);
  expect_error_mentioning(bad, "bytes_per_token");

  expect_error_mentioning(temp_path("missing.bin"), "cannot open");
  std::remove(good.c_str());
  std::remove(bad.c_str());
}

#include "common/temp_dir.h"
#include "model/safetensors.h"

#include <hsa/random.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace hsa;
using hsa::testing::TempDir;
namespace fs = std::filesystem;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Raw bytes of a contiguous tensor: exact comparison for every dtype, bf16 included.
std::string raw(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.raw_data()), c.nbytes());
}

std::string load_error(const std::string& path) {
  try {
    load_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string header_with(const std::string& json) {
  std::string bytes(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return bytes + json;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(Safetensors, RoundTripAllDtypesWithMetadata) {
  TempDir dir;
  std::map<std::string, Tensor> tensors;
  tensors["a.f32"] = randn({3, 5}, 1);
  tensors["b.bf16"] = randn({7}, 2, 1.0, DType::bf16);  // odd byte count: alignment of what follows
  tensors["c.i32"] = Tensor::from_i32({1, -2, 3, 2147483647, -2147483647 - 1, 0}, {2, 3});
  tensors["d.f64"] = randn({2, 2, 2}, 3, 1.0, DType::f64);
  tensors["e.scalar"] = Tensor::full({}, 4.5);
  tensors["f.empty"] = Tensor::zeros({0, 4});
  tensors["g.strided"] = randn({4, 6}, 4).slice(1, 1, 4);  // non-contiguous view is written contiguous
  std::map<std::string, std::string> meta = {{"step", "1200"}, {"format", "hsa"}};
  const std::string path = dir.file("t.safetensors");
  save_safetensors(path, tensors, meta);
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  // Standard layout: 8-byte little-endian header length, then JSON, data 8-aligned.
  std::string bytes = read_bytes(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  EXPECT_EQ((8 + n) % 8, 0u);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["a.f32"]["dtype"], "F32");
  EXPECT_EQ(header["b.bf16"]["dtype"], "BF16");
  EXPECT_EQ(header["c.i32"]["dtype"], "I32");
  EXPECT_EQ(header["d.f64"]["dtype"], "F64");
  EXPECT_EQ(header["c.i32"]["shape"], nlohmann::json({2, 3}));
  EXPECT_EQ(header["__metadata__"]["step"], "1200");

  SafetensorsFile f = load_safetensors(path);
  EXPECT_EQ(f.metadata, meta);
  ASSERT_EQ(f.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const Tensor& got = f.tensors.at(name);
    EXPECT_EQ(got.dtype(), t.dtype()) << name;
    EXPECT_EQ(got.shape(), t.shape()) << name;
    EXPECT_EQ(raw(got), raw(t)) << name;
    if (got.numel() > 0)
      EXPECT_EQ(reinterpret_cast<uintptr_t>(got.raw_data()) % dtype_size(got.dtype()), 0u) << name;
  }
  EXPECT_EQ(f.tensors.at("c.i32").item({1, 1}), -2147483648.0);
}

TEST(Safetensors, LoadedTensorsOutliveTheFileAndAreWritable) {
  TempDir dir;
  const std::string path = dir.file("t.safetensors");
  save_safetensors(path, {{"w", Tensor::from_values({1, 2, 3}, {3})}});
  Tensor w = load_safetensors(path).tensors.at("w");  // the SafetensorsFile is gone; the mapping is not
  fs::remove(path);
  EXPECT_EQ(w.to_vector(), (std::vector<double>{1, 2, 3}));
  w.set({1}, 7);  // private mapping: in-place updates are allowed
  EXPECT_EQ(w.item({1}), 7.0);
}

TEST(Safetensors, TruncatedFilesAreRejectedAtEveryCut) {
  TempDir dir;
  const std::string good = dir.file("good.safetensors");
  save_safetensors(good, {{"x", randn({16, 16}, 5)}, {"y", randn({9}, 6, 1.0, DType::bf16)}}, {{"k", "v"}});
  const std::string bytes = read_bytes(good);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  const std::string cut_path = dir.file("cut.safetensors");
  struct Case {
    size_t keep;
    const char* expect;
  };
  const Case cases[] = {
      {0, "too short for the 8-byte header length"},
      {5, "too short for the 8-byte header length"},
      {8, "header length"},
      {8 + n / 2, "runs past the end"},
      {8 + n, "out of range"},
      {8 + n + 100, "out of range"},
      {bytes.size() - 1, "out of range"},
  };
  for (const Case& c : cases) {
    write_bytes(cut_path, bytes.substr(0, c.keep));
    std::string msg = load_error(cut_path);
    EXPECT_TRUE(contains(msg, c.expect)) << "cut at " << c.keep << ": " << msg;
    EXPECT_TRUE(contains(msg, cut_path)) << msg;
  }
  EXPECT_NO_THROW(load_safetensors(good));
}

TEST(Safetensors, CorruptedHeadersGiveClearErrors) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  auto expect_error = [&](const std::string& bytes, const std::string& what) {
    write_bytes(path, bytes);
    std::string msg = load_error(path);
    EXPECT_TRUE(contains(msg, what)) << "expected '" << what << "' in: " << msg;
    EXPECT_TRUE(contains(msg, path)) << msg;
  };
  const std::string data(64, '\0');
  expect_error(header_with("{\"x\": {\"dtype\": \"F32\", \"shape\": [2]") + data, "invalid JSON");
  expect_error(header_with("[1, 2]") + data, "not a JSON object");
  expect_error(header_with(R"({"x": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}})") + data,
               "unsupported dtype \"F16\"");
  expect_error(header_with(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 400]}})") + data,
               "'x' data_offsets [0, 400] out of range");
  expect_error(header_with(R"({"x": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 16]}})") + data,
               "'x' is F32 [2, 3] = 24 bytes but data_offsets [0, 16] span 16 bytes");
  expect_error(header_with(R"({"x": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})") + data,
               "invalid shape");
  expect_error(header_with(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})") + data,
               "out of range");
  expect_error(header_with(R"({"x": {"dtype": "F32", "shape": [2]}})") + data, "lacks one of");
  expect_error(header_with(R"({"__metadata__": {"step": 3}})") + data, "is not a string");
  std::string huge(8, '\xff');
  expect_error(huge + data, "implausible");
  EXPECT_TRUE(contains(load_error(dir.file("missing.safetensors")), "cannot open"));
}

TEST(Safetensors, MisalignedForeignTensorsAreCopied) {
  TempDir dir;
  const std::string path = dir.file("foreign.safetensors");
  // A header of odd length (other writers do not pad), so the f32 data starts misaligned.
  std::string json = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  if ((8 + json.size()) % 4 == 0) json += " ";
  float values[2] = {1.5f, -2.25f};
  write_bytes(path, header_with(json) + std::string(reinterpret_cast<const char*>(values), 8));
  Tensor x = load_safetensors(path).tensors.at("x");
  EXPECT_EQ(x.to_vector(), (std::vector<double>{1.5, -2.25}));
}

TEST(Safetensors, CheckTensorsMatchListsEveryProblem) {
  std::vector<ParamSpec> specs = {
      {"a", {2, 3}, ParamSpec::Init::normal, 0.02},
      {"b", {4}, ParamSpec::Init::ones, 0},
      {"c", {5}, ParamSpec::Init::ones, 0},
      {"d", {1}, ParamSpec::Init::zeros, 0},
  };
  std::map<std::string, Tensor> loaded = {
      {"a", Tensor::zeros({3, 2})},
      {"b", Tensor::zeros({4}, DType::bf16)},
      {"d", Tensor::zeros({1})},
      {"extra", Tensor::zeros({1})},
  };
  try {
    check_tensors_match(loaded, specs, DType::f32);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_TRUE(contains(msg, "4 problems")) << msg;
    EXPECT_TRUE(contains(msg, "tensor 'a' has shape [3, 2], expected [2, 3]")) << msg;
    EXPECT_TRUE(contains(msg, "tensor 'b' has dtype bf16, expected f32")) << msg;
    EXPECT_TRUE(contains(msg, "missing tensor 'c' [5]")) << msg;
    EXPECT_TRUE(contains(msg, "unexpected tensor 'extra'")) << msg;
    EXPECT_FALSE(contains(msg, "'d'")) << msg;
  }
  loaded.erase("extra");
  loaded["a"] = Tensor::zeros({2, 3});
  loaded["b"] = Tensor::zeros({4});
  loaded["c"] = Tensor::zeros({5});
  EXPECT_NO_THROW(check_tensors_match(loaded, specs, DType::f32));
}

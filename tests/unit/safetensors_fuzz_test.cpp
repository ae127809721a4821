// The safetensors and config readers against corrupted files: repeated keys, overlapping or loose data, and
// thousands of random mutations of valid files. Every case must load consistently or raise hsa::Error: no crash,
// no hang, no other exception.
#include "common/error_text.h"
#include "common/temp_dir.h"
#include "model/config.h"
#include "model/safetensors.h"

#include <hsa/random.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <typeinfo>

using namespace hsa;
using hsa::testing::error_of;
using hsa::testing::has;
using hsa::testing::TempDir;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
}

// A file from a JSON header text and a data section.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((uint64_t(header.size()) >> (8 * i)) & 0xff);
  return bytes + header + data;
}

std::string raw(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.raw_data()), c.nbytes());
}

std::string load_error(const std::string& path) { return error_of([&] { load_safetensors(path); }); }

// One random edit of `bytes`: flip a bit, set a byte to a value that matters to a JSON or length parser, insert,
// delete or duplicate a run of bytes, or truncate. `lo`/`hi` bound where the edit lands.
std::string mutate(std::string bytes, Rng& rng, size_t lo, size_t hi) {
  auto pick = [&](size_t n) { return static_cast<size_t>(rng.next_u64() % std::max<size_t>(n, 1)); };
  static const char kInteresting[] = "0123456789{}[]\",:-.eE \\\xff\x00";
  const size_t at = lo + pick(hi - lo);
  switch (rng.next_u64() % 6) {
    case 0: bytes[at] = static_cast<char>(bytes[at] ^ (1 << pick(8))); break;
    case 1: bytes[at] = kInteresting[pick(sizeof kInteresting - 1)]; break;
    case 2: bytes.insert(at, 1 + pick(8), kInteresting[pick(sizeof kInteresting - 1)]); break;
    case 3: bytes.erase(at, 1 + pick(8)); break;
    case 4: bytes.insert(at, bytes.substr(at, 1 + pick(24))); break;
    default: bytes.resize(at); break;
  }
  return bytes;
}

template <class Fn> void expect_load_or_hsa_error(Fn fn, const std::string& what) {
  try {
    fn();
  } catch (const Error&) {
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": " << typeid(e).name() << ": " << e.what();
  } catch (...) {
    ADD_FAILURE() << what << ": a non-std exception";
  }
}

}  // namespace

TEST(SafetensorsCorrupt, DuplicateTensorKeyIsRefused) {
  TempDir dir;
  const std::string data(8, '\1');
  write_bytes(dir.file("d.safetensors"),
              safetensors_bytes(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                                R"( "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                                data));
  EXPECT_TRUE(has(load_error(dir.file("d.safetensors")), "duplicate key 'w'"));
}

TEST(SafetensorsCorrupt, OverlappingDataOffsetsAreRefused) {
  TempDir dir;
  write_bytes(dir.file("o.safetensors"),
              safetensors_bytes(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                                R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                std::string(12, '\0')));
  EXPECT_TRUE(has(load_error(dir.file("o.safetensors")), "overlap"));
}

TEST(SafetensorsCorrupt, TrailingBytesAndGapsAreRefused) {
  TempDir dir;
  const std::string header = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  write_bytes(dir.file("ok.safetensors"), safetensors_bytes(header, std::string(8, '\0')));
  EXPECT_NO_THROW(load_safetensors(dir.file("ok.safetensors")));
  write_bytes(dir.file("t.safetensors"), safetensors_bytes(header, std::string(9, '\0')));
  EXPECT_TRUE(has(load_error(dir.file("t.safetensors")), "1 trailing bytes"));
  write_bytes(dir.file("g.safetensors"),
              safetensors_bytes(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                                std::string(8, '\0')));
  EXPECT_TRUE(has(load_error(dir.file("g.safetensors")), "belong to no tensor"));
}

TEST(SafetensorsFuzz, RandomMutationsLoadConsistentlyOrRaiseHsaError) {
  TempDir dir;
  const std::string good_path = dir.file("good.safetensors");
  std::map<std::string, Tensor> tensors{{"a", Tensor::from_values({1, 2, 3, 4, 5, 6}, {2, 3})},
                                        {"b", Tensor::from_values({7, 8}, {2}, DType::bf16)},
                                        {"c", Tensor::from_i32({9, 10, 11}, {3})},
                                        {"d", Tensor::zeros({0, 2})}};
  save_safetensors(good_path, tensors, {{"step", "12"}});
  const std::string good = read_bytes(good_path);
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(static_cast<unsigned char>(good[i])) << (8 * i);
  const size_t data_start = 8 + header_len;

  const auto start = std::chrono::steady_clock::now();
  Rng rng(20261203);
  const std::string path = dir.file("m.safetensors");
  int loaded = 0, rejected = 0;
  for (int i = 0; i < 4000; ++i) {
    // Most edits hit the length and the header, where parsing happens; some hit the data.
    const bool in_data = i % 4 == 3;
    std::string bytes = mutate(good, rng, in_data ? data_start : 0, in_data ? good.size() : data_start);
    if (i % 7 == 0) bytes = mutate(bytes, rng, 0, bytes.size());  // and some get two edits anywhere
    write_bytes(path, bytes);
    bool ok = false;
    expect_load_or_hsa_error(
        [&] {
          SafetensorsFile f = load_safetensors(path);
          ok = true;
          // Whatever loaded is exactly what the file says: each tensor's bytes are in the file, and when only
          // the data changed, the names, shapes, dtypes and metadata are the original ones.
          for (const auto& [name, t] : f.tensors) {
            const std::string b = raw(t);
            EXPECT_NE(bytes.find(b), std::string::npos) << "case " << i << " tensor " << name;
          }
          if (bytes.size() == good.size() && bytes.compare(0, data_start, good, 0, data_start) == 0) {
            ASSERT_EQ(f.tensors.size(), tensors.size()) << "case " << i;
            for (const auto& [name, t] : tensors) {
              EXPECT_EQ(f.tensors.at(name).shape(), t.shape()) << "case " << i;
              EXPECT_EQ(f.tensors.at(name).dtype(), t.dtype()) << "case " << i;
            }
            EXPECT_EQ(f.metadata.at("step"), "12");
          }
        },
        "case " + std::to_string(i));
    (ok ? loaded : rejected) += 1;
  }
  EXPECT_GT(rejected, 1000);  // the mutations do reach the parser
  EXPECT_GT(loaded, 100);     // and data-only edits load
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 60.0);
}

TEST(ConfigFuzz, RandomMutationsLoadIdenticallyOrRaiseHsaError) {
  TempDir dir;
  const std::string text = read_bytes(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  const ModelConfig original = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  const auto start = std::chrono::steady_clock::now();
  Rng rng(7);
  const std::string path = dir.file("config.json");
  int identical = 0, rejected = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bytes = mutate(text, rng, 0, text.size());
    write_bytes(path, bytes);
    expect_load_or_hsa_error(
        [&] {
          try {
            ModelConfig c = ModelConfig::from_file(path);
            // What loads is a valid config that survives its own round trip.
            EXPECT_EQ(ModelConfig::from_json(c.to_json()).to_json(), c.to_json()) << "case " << i;
            identical += c.to_json() == original.to_json();
          } catch (const Error&) {
            ++rejected;
            throw;
          }
        },
        "case " + std::to_string(i));
  }
  EXPECT_GT(rejected, 1000);
  EXPECT_GT(identical, 10);  // whitespace edits
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 60.0);
}

#include "model/safetensors.h"

#include "util/file_util.h"
#include "util/json_util.h"

#include <hsa/error.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace hsa {

namespace {

// The header may not be larger than this (the reference implementation's limit): a corrupted length
// must not make us try to parse gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

const char* st_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32: return "F32";
    case DType::bf16: return "BF16";
    case DType::i32: return "I32";
    case DType::f64: return "F64";
  }
  return "?";
}

bool parse_st_dtype(const std::string& name, DType* out) {
  if (name == "F32") *out = DType::f32;
  else if (name == "BF16") *out = DType::bf16;
  else if (name == "I32") *out = DType::i32;
  else if (name == "F64") *out = DType::f64;
  else return false;
  return true;
}

}  // namespace

namespace {

// Widest dtype first: with an 8-aligned data start, every tensor then starts aligned for its dtype.
template <class Entries>
void sort_widest_first(Entries& order) {
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return dtype_size(a.second.dtype()) > dtype_size(b.second.dtype());
  });
}

// The JSON header of tensors laid out in `order`, padded so the data starts 8-aligned; `data_bytes` gets the
// data section's size. Only names, dtypes and shapes are read, so it also sizes a file before writing it.
template <class Entries>
std::string header_text(const std::string& path, const Entries& order,
                        const std::map<std::string, std::string>& metadata, uint64_t* data_bytes) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : order) {
    HSA_CHECK(t.defined(), "save_safetensors {}: tensor '{}' is undefined", path, name);
    HSA_CHECK(name != "__metadata__", "save_safetensors {}: '__metadata__' is reserved", path);
    header[name] = {{"dtype", st_dtype(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  *data_bytes = offset;
  return text;
}

}  // namespace

uint64_t safetensors_file_bytes(const std::map<std::string, Tensor>& tensors,
                                const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> order;  // Tensor copies share storage
  for (const auto& [name, t] : tensors) order.emplace_back(name, t);
  sort_widest_first(order);
  uint64_t data_bytes = 0;
  const std::string header = header_text("(sizing)", order, metadata, &data_bytes);
  return 8 + header.size() + data_bytes;
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> order;
  for (const auto& [name, t] : tensors) {
    HSA_CHECK(t.defined(), "save_safetensors {}: tensor '{}' is undefined", path, name);
    order.emplace_back(name, t.to(Device::cpu).contiguous());
  }
  sort_widest_first(order);
  uint64_t data_bytes = 0;
  const std::string header = header_text(path, order, metadata, &data_bytes);

  std::string bytes;
  bytes.reserve(8 + header.size() + data_bytes);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  bytes += header;
  for (const auto& [name, t] : order) bytes.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  write_file_atomic(path, bytes);
}

SafetensorsFile load_safetensors(const std::string& path) {
  int fd = open_regular_file(path, "safetensors");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail("safetensors {}: cannot stat: {}", path, std::strerror(err));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail("safetensors {}: truncated file: {} bytes, too short for the 8-byte header length", path, size);
  }
  // Private and writable: callers may update the loaded tensors in place (training resumes) without
  // touching the file; untouched pages stay shared with the page cache.
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int map_err = errno;
  ::close(fd);
  if (base == MAP_FAILED) fail("safetensors {}: cannot mmap {} bytes: {}", path, size, std::strerror(map_err));
  std::shared_ptr<const void> mapping(base, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
  const auto* bytes = static_cast<const unsigned char*>(base);

  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  if (header_len > kMaxHeaderBytes)
    fail("safetensors {}: header length {} is implausible (limit {}); the file is corrupted or not safetensors",
         path, header_len, kMaxHeaderBytes);
  if (8 + header_len > size)
    fail("safetensors {}: truncated file: header length {} runs past the end of the {}-byte file", path,
         header_len, size);

  const nlohmann::json header = parse_json_strict(
      std::string_view(reinterpret_cast<const char*>(bytes) + 8, header_len), "safetensors " + path + ": header");
  if (!header.is_object()) fail("safetensors {}: header is not a JSON object", path);

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;
  auto* data = const_cast<unsigned char*>(bytes) + data_start;
  SafetensorsFile out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // every tensor's [begin, end), to check the layout
  std::vector<std::string> range_names;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("safetensors {}: __metadata__ is not an object", path);
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          fail("safetensors {}: __metadata__ value of '{}' is not a string: {}", path, key, value.dump());
        out.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) fail("safetensors {}: entry for tensor '{}' is not an object", path, name);
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || shape_it == entry.end() || offsets_it == entry.end())
      fail("safetensors {}: tensor '{}' lacks one of dtype, shape, data_offsets: {}", path, name, entry.dump());
    DType dtype;
    if (!dtype_it->is_string() || !parse_st_dtype(dtype_it->get<std::string>(), &dtype))
      fail("safetensors {}: tensor '{}' has unsupported dtype {} (supported: F32, BF16, I32, F64)", path, name,
           dtype_it->dump());
    if (!shape_it->is_array()) fail("safetensors {}: tensor '{}' has a non-array shape {}", path, name, shape_it->dump());
    Shape shape;
    uint64_t numel = 1;
    for (const auto& d : *shape_it) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        fail("safetensors {}: tensor '{}' has an invalid shape {}", path, name, shape_it->dump());
      uint64_t v = d.get<uint64_t>();
      if (v > (1ull << 48) || (v && numel > (1ull << 48) / v))
        fail("safetensors {}: tensor '{}' has an absurd shape {}", path, name, shape_it->dump());
      numel *= v;
      shape.push_back(static_cast<int64_t>(v));
    }
    if (!offsets_it->is_array() || offsets_it->size() != 2 || !(*offsets_it)[0].is_number_unsigned() ||
        !(*offsets_it)[1].is_number_unsigned())
      fail("safetensors {}: tensor '{}' has invalid data_offsets {}", path, name, offsets_it->dump());
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>(), end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end || end > data_size)
      fail("safetensors {}: tensor '{}' data_offsets [{}, {}] out of range: the data section has {} bytes{}", path,
           name, begin, end, data_size, end > data_size ? " (truncated file?)" : "");
    const uint64_t expected_bytes = numel * dtype_size(dtype);
    if (end - begin != expected_bytes)
      fail("safetensors {}: tensor '{}' is {} {} = {} bytes but data_offsets [{}, {}] span {} bytes", path, name,
           st_dtype(dtype), shape_str(shape), expected_bytes, begin, end, end - begin);
    ranges.emplace_back(begin, end);
    range_names.push_back(name);
    void* ptr = data + begin;
    if (reinterpret_cast<uintptr_t>(ptr) % dtype_size(dtype) == 0) {
      out.tensors[name] = Tensor::wrap(ptr, shape, dtype, Device::cpu, mapping);
    } else {
      Tensor copy = Tensor::empty(shape, dtype);
      std::memcpy(copy.raw_data(), ptr, expected_bytes);
      out.tensors[name] = copy;
    }
  }
  // The tensors must tile the data section exactly, as every writer lays them out: an overlap means two
  // tensors share bytes (one write would change both), a gap or trailing bytes mean data no tensor owns,
  // and either is a corrupted or hand-made file.
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  uint64_t covered = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const auto [begin, end] = ranges[order[k]];
    if (begin < covered)
      fail("safetensors {}: tensor '{}' data_offsets [{}, {}] overlap those of tensor '{}'", path,
           range_names[order[k]], begin, end, range_names[order[k - 1]]);
    if (begin > covered)
      fail("safetensors {}: bytes [{}, {}) of the data section belong to no tensor", path, covered, begin);
    covered = end;
  }
  if (covered != data_size)
    fail("safetensors {}: {} trailing bytes after the last tensor's data (the data section has {} bytes, tensors "
         "cover {})",
         path, data_size - covered, data_size, covered);
  return out;
}

void check_tensors_match(const std::map<std::string, Tensor>& loaded, const std::vector<ParamSpec>& expected,
                         DType dtype) {
  std::vector<std::string> problems;
  std::map<std::string, const ParamSpec*> by_name;
  for (const ParamSpec& s : expected) by_name[s.name] = &s;
  for (const ParamSpec& s : expected) {
    auto it = loaded.find(s.name);
    if (it == loaded.end()) {
      problems.push_back(fmt::format("missing tensor '{}' {}", s.name, shape_str(s.shape)));
      continue;
    }
    const Tensor& t = it->second;
    if (t.shape() != s.shape)
      problems.push_back(fmt::format("tensor '{}' has shape {}, expected {}", s.name, shape_str(t.shape()),
                                     shape_str(s.shape)));
    if (t.dtype() != dtype)
      problems.push_back(
          fmt::format("tensor '{}' has dtype {}, expected {}", s.name, dtype_name(t.dtype()), dtype_name(dtype)));
  }
  for (const auto& [name, t] : loaded)
    if (!by_name.count(name))
      problems.push_back(fmt::format("unexpected tensor '{}' {} {}", name, dtype_name(t.dtype()), shape_str(t.shape())));
  if (problems.empty()) return;
  std::string msg = fmt::format("parameters do not match the model: {} problem{}:", problems.size(),
                                problems.size() == 1 ? "" : "s");
  for (const std::string& p : problems) msg += "\n  " + p;
  throw Error(msg);
}

}  // namespace hsa

#include "infer/state_file.h"

#include "util/file_util.h"
#include "util/hash.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace hsa {

namespace {

constexpr char kMagic[8] = {'H', 'S', 'A', 'S', 'T', 'A', 'T', 'E'};
constexpr uint32_t kVersion = 1;
constexpr size_t kPrefix = 24;  // magic, version, header length, file length
constexpr size_t kAlign = 64;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

template <class T> void put(std::string& out, size_t at, T value) { std::memcpy(out.data() + at, &value, sizeof(T)); }
template <class T> T get(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// Named tensors in file order.
struct Entry {
  std::string name;
  Tensor tensor;
};

std::vector<Entry> state_tensors(const SavedState& s) {
  std::vector<Entry> out;
  auto add = [&](std::string name, const Tensor& t) {
    if (t.defined()) out.push_back({std::move(name), t});
  };
  add("tokens", Tensor::from_i32(s.tokens, {static_cast<int64_t>(s.tokens.size())}));
  add("logits", s.logits);
  const ChunkMemory& m = s.state.memory.memory;
  if (m.num_chunks() > 0) {
    add("memory.k", m.mem_k());
    add("memory.v", m.mem_v());
    add("memory.landmarks", m.landmarks());
  }
  if (s.state.memory.pending() > 0) {
    add("pending.hn", s.state.memory.pending_hn);
    add("pending.k", s.state.memory.pending_k);
    add("pending.v", s.state.memory.pending_v);
  }
  auto add_windows = [&](const std::string& prefix, const std::vector<KvHistory>& kv) {
    for (size_t i = 0; i < kv.size(); ++i) {
      add(fmt::format("{}.{}.k", prefix, i), kv[i].k);
      add(fmt::format("{}.{}.v", prefix, i), kv[i].v);
    }
  };
  add_windows("kv", s.state.kv);
  for (const auto& [position, kv] : s.windows) add_windows(fmt::format("windows.{}", position), kv);
  return out;
}

nlohmann::json window_starts(const std::vector<KvHistory>& kv) {
  nlohmann::json starts = nlohmann::json::array();
  for (const KvHistory& h : kv) starts.push_back(h.start);
  return starts;
}

// The file's bytes, read at once into a 64-byte aligned block the loaded tensors keep alive.
std::shared_ptr<char> read_aligned(const std::string& path, size_t& size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("load state: cannot open '{}': {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("load state: cannot stat '{}': {}", path, std::strerror(errno));
  }
  size = static_cast<size_t>(st.st_size);
  std::shared_ptr<char> block(static_cast<char*>(std::aligned_alloc(kAlign, align_up(std::max<size_t>(size, 1)))),
                              [](char* p) { std::free(p); });
  HSA_CHECK(block, "load state: cannot allocate {} bytes for '{}'", size, path);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::read(fd, block.get() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      fail("load state: cannot read '{}' ({} of {} bytes)", path, done, size);
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return block;
}

// Checks the fixed prefix of a state file of `size` bytes at `p` (magic, version, header length within the file);
// returns the header length.
uint32_t check_prefix(const char* p, size_t size, const std::string& path) {
  HSA_CHECK(size >= kPrefix + sizeof(uint64_t) && std::memcmp(p, kMagic, sizeof(kMagic)) == 0,
            "load state: '{}' is not an hsa state file (no HSASTATE header)", path);
  uint32_t version = get<uint32_t>(p + 8), header_len = get<uint32_t>(p + 12);
  HSA_CHECK(version == kVersion, "load state: '{}' has format version {}, this build reads version {}", path,
            version, kVersion);
  HSA_CHECK(kPrefix + header_len + sizeof(uint64_t) <= size, "load state: '{}' is corrupt (header length {})", path,
            header_len);
  return header_len;
}

nlohmann::json parse_header(const char* p, uint32_t header_len, const std::string& path) {
  nlohmann::json header = nlohmann::json::parse(std::string_view(p + kPrefix, header_len), nullptr, false);
  HSA_CHECK(!header.is_discarded() && header.is_object(), "load state: '{}' has a corrupt header", path);
  return header;
}

}  // namespace

int64_t state_file_positions(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HSA_CHECK(in.good(), "load state: cannot open '{}'", path);
  in.seekg(0, std::ios::end);
  const size_t size = static_cast<size_t>(in.tellg());
  std::string head(std::min(size, kPrefix), '\0');
  in.seekg(0);
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  if (head.size() < kPrefix) head.resize(kPrefix, '\0');  // refused below as too short
  const uint32_t header_len = check_prefix(head.data(), size, path);
  head.resize(kPrefix + header_len);
  in.read(head.data() + kPrefix, header_len);
  HSA_CHECK(in.good(), "load state: cannot read the header of '{}'", path);
  nlohmann::json header = parse_header(head.data(), header_len, path);
  HSA_CHECK(header.contains("position") && header["position"].is_number_integer() &&
                header["position"].get<int64_t>() >= 0,
            "load state: '{}' has a corrupt header (no position)", path);
  return header["position"].get<int64_t>();
}

ModelFingerprint model_fingerprint(const Checkpoint& ck, const std::string& tokenizer_name) {
  // Config keys at their default values are left out: a build that adds an option (default off) still knows the
  // states of the models it runs unchanged.
  nlohmann::json identity = ck.config.to_json();
  const nlohmann::json defaults = ModelConfig{}.to_json();
  for (auto it = defaults.begin(); it != defaults.end(); ++it)
    if (identity.contains(it.key()) && identity[it.key()] == it.value()) identity.erase(it.key());
  Hasher h;
  h.update(identity.dump());
  for (const auto& [name, t] : ck.params) {
    Tensor c = t.contiguous().to(Device::cpu);
    h.update(fmt::format("{} {} {}", name, dtype_name(c.dtype()), shape_str(c.shape())));
    h.update(c.raw_data(), c.nbytes());
  }
  h.update(tokenizer_name);
  return {hash_hex(h.digest()), tokenizer_name};
}

void save_state_file(const std::string& path, const SavedState& saved, const ModelFingerprint& model) {
  HSA_CHECK(saved.state.position == static_cast<int64_t>(saved.tokens.size()),
            "save state '{}': state at position {} but {} tokens recorded", path, saved.state.position,
            saved.tokens.size());
  std::vector<Entry> entries = state_tensors(saved);
  DType dtype = DType::f32;
  for (const Entry& e : entries)
    if (e.name != "tokens" && e.name != "logits") dtype = e.tensor.dtype();
  nlohmann::json header{{"hash", hash_algorithm()},       {"model", model.hash},
                        {"tokenizer", model.tokenizer},   {"dtype", dtype_name(dtype)},
                        {"position", saved.state.position}, {"kv_start", window_starts(saved.state.kv)}};
  nlohmann::json windows = nlohmann::json::object();
  for (const auto& [position, kv] : saved.windows) windows[std::to_string(position)] = window_starts(kv);
  header["windows"] = windows;
  nlohmann::json tensors = nlohmann::json::array();
  size_t offset = 0;
  for (const Entry& e : entries) {
    tensors.push_back({{"name", e.name},
                       {"dtype", dtype_name(e.tensor.dtype())},
                       {"shape", e.tensor.shape()},
                       {"offset", offset}});
    offset = align_up(offset + e.tensor.nbytes());
  }
  header["tensors"] = tensors;
  std::string text = header.dump();
  size_t data_start = align_up(kPrefix + text.size());
  size_t total = data_start + offset + sizeof(uint64_t);
  std::string out(total, '\0');
  std::memcpy(out.data(), kMagic, sizeof(kMagic));
  put<uint32_t>(out, 8, kVersion);
  put<uint32_t>(out, 12, static_cast<uint32_t>(text.size()));
  put<uint64_t>(out, 16, total);
  std::memcpy(out.data() + kPrefix, text.data(), text.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    Tensor t = entries[i].tensor.contiguous().to(Device::cpu);
    std::memcpy(out.data() + data_start + tensors[i]["offset"].get<size_t>(), t.raw_data(), t.nbytes());
  }
  put<uint64_t>(out, total - sizeof(uint64_t), hash_bytes(out.data(), total - sizeof(uint64_t)));
  write_file_atomic(path, out);
}

SavedState load_state_file(const std::string& path, const ModelFingerprint& fingerprint, const Model& model) {
  return load_state_file(path, fingerprint, model, model.device());
}

SavedState load_state_file(const std::string& path, const ModelFingerprint& fingerprint, const Model& model,
                           Device memory_device) {
  size_t size = 0;
  std::shared_ptr<char> block = read_aligned(path, size);
  const char* p = block.get();
  const uint32_t header_len = check_prefix(p, size, path);
  uint64_t total = get<uint64_t>(p + 16);
  HSA_CHECK(total == size, "load state: '{}' is truncated or padded: {} bytes, its header says {}", path, size,
            total);
  nlohmann::json header = parse_header(p, header_len, path);
  std::string algorithm = header.value("hash", "");
  HSA_CHECK(algorithm == hash_algorithm(), "load state: '{}' was written by a build hashing with {}, this one uses {}",
            path, algorithm, hash_algorithm());
  uint64_t stored = get<uint64_t>(p + size - sizeof(uint64_t));
  HSA_CHECK(hash_bytes(p, size - sizeof(uint64_t)) == stored, "load state: '{}' is corrupt (checksum mismatch)",
            path);
  // From here the bytes are what was written: a failure below is a mismatch, not damage.
  HSA_CHECK(header.value("model", "") == fingerprint.hash,
            "load state: '{}' belongs to another model (fingerprint {}, this model's is {})", path,
            header.value("model", ""), fingerprint.hash);
  HSA_CHECK(header.value("tokenizer", "") == fingerprint.tokenizer,
            "load state: '{}' was made with tokenizer '{}', this model uses '{}'", path, header.value("tokenizer", ""),
            fingerprint.tokenizer);
  std::string dtype = header.value("dtype", "");
  HSA_CHECK(dtype == dtype_name(model.dtype()),
            "load state: '{}' holds a {} state, the model runs in {} (use the same --dtype)", path, dtype,
            dtype_name(model.dtype()));

  size_t data_start = align_up(kPrefix + header_len);
  std::map<std::string, Tensor> tensors;
  for (const auto& t : header.at("tensors")) {
    Shape shape = t.at("shape").get<Shape>();
    DType dt = parse_dtype(t.at("dtype").get<std::string>());
    size_t offset = data_start + t.at("offset").get<size_t>();
    size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dt);
    HSA_CHECK(offset + bytes <= size - sizeof(uint64_t), "load state: '{}': tensor {} lies outside the file", path,
              t.at("name").get<std::string>());
    const std::string name = t.at("name").get<std::string>();
    Tensor cpu = Tensor::wrap(block.get() + offset, shape, dt, Device::cpu, block);
    // The tokens and the last logits are read on the host: no round trip through the device.
    const bool host_side = name == "tokens" || name == "logits";
    tensors[name] = host_side ? cpu : cpu.to(name.starts_with("memory.") ? memory_device : model.device());
  }
  auto take = [&](const std::string& name) {
    auto it = tensors.find(name);
    return it == tensors.end() ? Tensor() : it->second;
  };
  auto windows = [&](const std::string& prefix, const nlohmann::json& starts) {
    std::vector<KvHistory> kv(static_cast<size_t>(model.config().num_layers()));
    HSA_CHECK(starts.size() == kv.size(), "load state: '{}' has windows for {} layers, the model has {}", path,
              starts.size(), kv.size());
    for (size_t i = 0; i < kv.size(); ++i)
      kv[i] = KvHistory{take(fmt::format("{}.{}.k", prefix, i)), take(fmt::format("{}.{}.v", prefix, i)),
                        starts[i].get<int64_t>()};
    return kv;
  };

  SavedState s;
  if (const Tensor tokens = take("tokens"); tokens.defined()) {
    const int32_t* ids = tokens.data<int32_t>();
    s.tokens.assign(ids, ids + tokens.numel());
  }
  // A copy: a view would keep the whole file's buffer alive for as long as the logits live.
  if (const Tensor logits = take("logits"); logits.defined()) s.logits = logits.clone();
  s.state = model.new_state();
  s.state.position = header.at("position").get<int64_t>();
  HSA_CHECK(s.state.position == static_cast<int64_t>(s.tokens.size()),
            "load state: '{}': position {} but {} tokens", path, s.state.position, s.tokens.size());
  if (tensors.count("memory.k"))
    s.state.memory.memory = ChunkMemory::adopt(take("memory.k"), take("memory.v"), take("memory.landmarks"));
  s.state.memory.pending_hn = take("pending.hn");
  s.state.memory.pending_k = take("pending.k");
  s.state.memory.pending_v = take("pending.v");
  s.state.kv = windows("kv", header.at("kv_start"));
  for (const auto& [position, starts] : header.at("windows").items())
    s.windows[std::stoll(position)] = windows(fmt::format("windows.{}", position), starts);
  return s;
}

}  // namespace hsa

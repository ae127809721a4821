#include "bench/kernel_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace hsa::bench {

namespace {

Measurement counted(Kernel kernel, const KernelShape& shape, const std::optional<DevicePeak>& peak) {
  Measurement m;
  m.kernel = kernel;
  m.len = shape.len;
  m.work = kernel_work(kernel, shape);
  if (peak) m.floor = floor_of(m.work, *peak);
  m.target_ms = target_ms(kernel, shape.len);
  return m;
}

template <class T>
nlohmann::json or_null(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

std::string run_command(const char* command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command, "r"), pclose);
  if (!pipe) return "";
  std::string out;
  std::array<char, 256> buf{};
  while (fgets(buf.data(), int(buf.size()), pipe.get())) out += buf.data();
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

Measurement measured(Kernel kernel, const KernelShape& shape, std::vector<float> times_ms,
                     const std::optional<DevicePeak>& peak) {
  if (times_ms.empty()) return not_measured(kernel, shape, "error", "no timings", peak);
  Measurement m = counted(kernel, shape, peak);
  std::sort(times_ms.begin(), times_ms.end());
  const size_t n = times_ms.size();
  m.repeats = int(n);
  m.min_ms = times_ms.front();
  m.median_ms = n % 2 ? times_ms[n / 2] : 0.5 * (double(times_ms[n / 2 - 1]) + double(times_ms[n / 2]));
  return m;
}

Measurement not_measured(Kernel kernel, const KernelShape& shape, const std::string& status,
                         const std::string& reason, const std::optional<DevicePeak>& peak) {
  Measurement m = counted(kernel, shape, peak);
  m.status = status;
  m.reason = reason;
  return m;
}

void set_per_token(Measurement& m, const std::vector<Measurement>& earlier) {
  if (!m.ok()) return;
  auto base = std::find_if(earlier.begin(), earlier.end(),
                           [&](const Measurement& e) { return e.ok() && e.kernel == m.kernel; });
  m.per_token = base == earlier.end() ? 1.0 : (m.median_ms / double(m.len)) / (base->median_ms / double(base->len));
}

std::string table_header() {
  return fmt::format("{:<12} {:>5} {:>10} {:>10} {:>8} {:>8} {:>9} {:<7} {:>8} {:>12} {:>9}", "kernel", "L",
                     "median ms", "min ms", "TFLOP/s", "GB/s", "floor ms", "bound", "of floor", "target ms",
                     "per token");
}

std::string table_row(const Measurement& m) {
  const std::string head = fmt::format("{:<12} {:>5}", kernel_name(m.kernel), length_label(m.len));
  if (!m.ok()) return fmt::format("{} {}: {}", head, m.status, m.reason);
  std::string floor = fmt::format("{:>9} {:<7} {:>8}", "?", "", "?");
  if (m.floor)
    floor = fmt::format("{:>9.4g} {:<7} {:>7.1f}%", m.floor->ms, m.floor->compute_bound ? "compute" : "memory",
                        100.0 * m.floor->ms / m.median_ms);
  std::string target = "-";
  if (m.target_ms) target = fmt::format("{:g} ({})", *m.target_ms, m.median_ms <= *m.target_ms ? "met" : "miss");
  std::string row = fmt::format("{} {:>10.4g} {:>10.4g} {:>8.1f} {:>8.0f} {} {:>12} {:>9.2f}", head, m.median_ms,
                                m.min_ms, m.tflops(), m.gbs(), floor, target, m.per_token.value_or(1.0));
  if (m.check_rel_err) row += fmt::format("  (check rel err {:.1e})", *m.check_rel_err);
  return row;
}

nlohmann::json to_json(const Measurement& m) {
  nlohmann::json j{{"kernel", kernel_name(m.kernel)},
                   {"L", m.len},
                   {"status", m.status},
                   {"flops", m.work.flops},
                   {"bytes", m.work.bytes},
                   {"floor_ms", m.floor ? nlohmann::json(m.floor->ms) : nlohmann::json(nullptr)},
                   {"floor_bound", m.floor ? nlohmann::json(m.floor->compute_bound ? "compute" : "memory")
                                           : nlohmann::json(nullptr)},
                   {"target_ms", or_null(m.target_ms)}};
  if (!m.ok()) {
    j["reason"] = m.reason;
    return j;
  }
  j["repeats"] = m.repeats;
  j["median_ms"] = m.median_ms;
  j["min_ms"] = m.min_ms;
  j["tflops"] = m.tflops();
  j["gb_per_s"] = m.gbs();
  j["floor_fraction"] = m.floor ? nlohmann::json(m.floor->ms / m.median_ms) : nlohmann::json(nullptr);
  j["meets_target"] = m.target_ms ? nlohmann::json(m.median_ms <= *m.target_ms) : nlohmann::json(nullptr);
  j["per_token_rel"] = or_null(m.per_token);
  j["check_rel_err"] = or_null(m.check_rel_err);
  return j;
}

nlohmann::json shape_json(const KernelShape& s) {
  return {{"dtype", "bf16"},       {"B", 1},         {"HQ", s.q_heads},          {"H", s.kv_heads},
          {"D", s.head_dim},       {"S", s.chunk_size}, {"K", s.topk},          {"dr", s.retrieval_dim},
          {"swa_window", s.window}};
}

nlohmann::json run_json(const std::string& device, const std::string& commit, const std::string& command,
                        const std::optional<DevicePeak>& peak, const KernelShape& shape,
                        const std::vector<Measurement>& results) {
  nlohmann::json rows = nlohmann::json::array();
  for (const Measurement& m : results) rows.push_back(to_json(m));
  nlohmann::json peak_json = nullptr;
  if (peak)
    peak_json = {{"name", peak->name}, {"tflops", peak->flops_per_s / 1e12}, {"tb_per_s", peak->bytes_per_s / 1e12}};
  return {{"device", device},          {"commit", commit}, {"command", command},
          {"peak", peak_json},         {"shape", shape_json(shape)}, {"results", rows}};
}

std::string current_commit() {
  if (const char* env = std::getenv("HSA_COMMIT"); env && *env) return env;
  const std::string head = run_command("git rev-parse --short HEAD 2>/dev/null");
  return head.empty() ? "unknown" : head;
}

}  // namespace hsa::bench

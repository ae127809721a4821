#include "bench/kernel_work.h"
#include "kernel/shapes.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

namespace hsa::bench {

namespace {

std::vector<std::string> split_commas(const std::string& list) {
  std::vector<std::string> parts;
  std::stringstream in(list);
  for (std::string part; std::getline(in, part, ',');) {
    part.erase(std::remove_if(part.begin(), part.end(), [](unsigned char c) { return std::isspace(c); }), part.end());
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

std::string kernel_names() {
  std::string names;
  for (Kernel k : all_kernels()) names += (names.empty() ? "" : ", ") + std::string(kernel_name(k));
  return names;
}

}  // namespace

const std::vector<Kernel>& all_kernels() {
  static const std::vector<Kernel> kernels{Kernel::hsa_fwd,          Kernel::hsa_fwd_bwd,      Kernel::retrieval,
                                           Kernel::swa_fwd,          Kernel::swa_fwd_bwd,      Kernel::hsa_decode,
                                           Kernel::retrieval_scalar, Kernel::retrieval_decode,
                                           Kernel::retrieval_decode_scalar, Kernel::retrieval_mma,
                                           Kernel::retrieval_gated};
  return kernels;
}

const char* kernel_name(Kernel kernel) {
  switch (kernel) {
    case Kernel::hsa_fwd: return "hsa_fwd";
    case Kernel::hsa_fwd_bwd: return "hsa_fwd_bwd";
    case Kernel::retrieval: return "retrieval";
    case Kernel::swa_fwd: return "swa_fwd";
    case Kernel::swa_fwd_bwd: return "swa_fwd_bwd";
    case Kernel::hsa_decode: return "hsa_decode";
    case Kernel::retrieval_scalar: return "retrieval_scalar";
    case Kernel::retrieval_decode: return "retrieval_decode";
    case Kernel::retrieval_decode_scalar: return "retrieval_decode_scalar";
    case Kernel::retrieval_mma: return "retrieval_mma";
    case Kernel::retrieval_gated: return "retrieval_gated";
  }
  return "?";
}

std::vector<Kernel> parse_kernels(const std::string& list) {
  std::vector<Kernel> kernels;
  for (const std::string& name : split_commas(list)) {
    auto it = std::find_if(all_kernels().begin(), all_kernels().end(),
                           [&](Kernel k) { return name == kernel_name(k); });
    HSA_CHECK(it != all_kernels().end(), "bench kernels: unknown kernel '{}' (expected some of: {})", name,
              kernel_names());
    if (std::find(kernels.begin(), kernels.end(), *it) == kernels.end()) kernels.push_back(*it);
  }
  HSA_CHECK(!kernels.empty(), "bench kernels: no kernel given (expected some of: {})", kernel_names());
  return kernels;
}

std::vector<int64_t> parse_lengths(const std::string& list, int64_t chunk_size) {
  std::vector<int64_t> lengths;
  for (const std::string& entry : split_commas(list)) {
    size_t digits = 0;
    while (digits < entry.size() && std::isdigit(static_cast<unsigned char>(entry[digits]))) ++digits;
    const std::string suffix = entry.substr(digits);
    const int64_t unit = suffix.empty()                   ? 1
                         : suffix == "K" || suffix == "k" ? 1024
                         : suffix == "M" || suffix == "m" ? 1024 * 1024
                                                          : 0;
    HSA_CHECK(digits > 0 && digits <= 12 && unit > 0,
              "bench kernels: bad length '{}' (expected a token count such as 4096, 64K or 1M)", entry);
    const int64_t len = std::stoll(entry.substr(0, digits)) * unit;
    HSA_CHECK(len > 0 && len % chunk_size == 0,
              "bench kernels: length {} is not a positive multiple of the chunk size {}", entry, chunk_size);
    lengths.push_back(len);
  }
  HSA_CHECK(!lengths.empty(), "bench kernels: no length given");
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  return lengths;
}

std::string length_label(int64_t len) {
  if (len >= 1024 * 1024 && len % (1024 * 1024) == 0) return fmt::format("{}M", len / (1024 * 1024));
  if (len >= 1024 && len % 1024 == 0) return fmt::format("{}K", len / 1024);
  return fmt::format("{}", len);
}

int64_t filled_slots(const KernelShape& s) {
  int64_t per_head = 0;
  for (int64_t t = 0; t < s.len; ++t) per_head += std::min(s.topk, visible_chunks(t, s.chunk_size, 0, s.chunks()));
  return per_head * s.kv_heads;
}

int64_t retrieval_pairs(const KernelShape& s) {
  int64_t per_head = 0;
  for (int64_t t = 0; t < s.len; ++t) per_head += visible_chunks(t, s.chunk_size, 0, s.chunks());
  return per_head * s.kv_heads;
}

int64_t window_pairs(const KernelShape& s) {
  int64_t pairs = 0;
  for (int64_t i = 0; i < s.len; ++i) pairs += std::min(i + 1, s.window);
  return pairs;
}

Work kernel_work(Kernel kernel, const KernelShape& s) {
  const double e = KernelShape::kElementBytes, L = double(s.len);
  const double q_tensor = L * double(s.q_heads * s.head_dim) * e;  // q, out, dout, dq
  const double kv_tensor = double(s.chunks() * s.chunk_size * s.kv_heads * s.head_dim) * e;  // one of K, V
  const double slots = L * double(s.kv_heads * s.topk);       // (token, KV head, slot) entries
  const double lse_hsa = L * double(s.q_heads * s.topk) * 4;  // f32 per (token, query head, slot)
  // Each filled (token, query head, slot) is a row of two GEMMs against its chunk (scores q K^T, then P V): 4 S D
  // FLOPs. The backward recomputes the scores and adds dP = dout V^T, dq = dS K, dK += dS^T q, dV += P^T dout:
  // 10 S D, so 14 S D for forward+backward.
  const double hsa_triples = double(filled_slots(s)) * double(s.group());
  const double swa_fwd_flops = 4.0 * double(s.head_dim) * double(s.q_heads) * double(window_pairs(s));
  const double swa_kv_tensor = L * double(s.kv_heads * s.head_dim) * e;
  switch (kernel) {
    case Kernel::hsa_fwd:  // reads q, K, V, indices (i32), weights (f32); writes out, lse
      return {4.0 * double(s.chunk_size * s.head_dim) * hsa_triples,
              2 * q_tensor + 2 * kv_tensor + 8 * slots + lse_hsa};
    case Kernel::hsa_fwd_bwd:  // the forward, then reads dout, q, K, V, indices, weights, lse; writes dq, dK, dV, dw
      return {14.0 * double(s.chunk_size * s.head_dim) * hsa_triples,
              5 * q_tensor + 6 * kv_tensor + 20 * slots + 2 * lse_hsa};
    case Kernel::retrieval:  // reads qr, landmarks; writes indices (i32), weights and scores (f32)
    case Kernel::retrieval_scalar:
    case Kernel::retrieval_mma:
    case Kernel::retrieval_gated:
      return {2.0 * double(s.retrieval_dim) * double(retrieval_pairs(s)),
              (L + double(s.chunks())) * double(s.kv_heads * s.retrieval_dim) * e + 12 * slots};
    case Kernel::swa_fwd:  // reads q, k, v; writes out, lse (f32 per token and head)
      return {swa_fwd_flops, 2 * q_tensor + 2 * swa_kv_tensor + 4 * L * double(s.q_heads)};
    case Kernel::swa_fwd_bwd:  // the forward, then reads dout, q, k, v, out, lse; writes dq, dk, dv
      // The backward is credited 2.5 forwards (FlashAttention's convention); it recomputes more than that.
      return {3.5 * swa_fwd_flops, 6 * q_tensor + 6 * swa_kv_tensor + 8 * L * double(s.q_heads)};
    case Kernel::retrieval_decode:  // token L-1: its qr row against every visible landmark
    case Kernel::retrieval_decode_scalar: {
      const double visible = double(visible_chunks(s.len - 1, s.chunk_size, 0, s.chunks()));
      return {2.0 * double(s.retrieval_dim) * double(s.kv_heads) * visible,
              (1 + double(s.chunks())) * double(s.kv_heads * s.retrieval_dim) * e + 12 * double(s.kv_heads * s.topk)};
    }
    case Kernel::hsa_decode: {  // token L-1: reads its q, the K/V rows of its chunks, idx, w; writes out, lse
      const double filled = double(std::min(s.topk, visible_chunks(s.len - 1, s.chunk_size, 0, s.chunks())));
      const double rows = filled * double(s.kv_heads * s.chunk_size * s.head_dim);  // K (or V) elements read
      return {4.0 * rows * double(s.group()),
              2 * rows * e + 2 * double(s.q_heads * s.head_dim) * e + 8 * double(s.kv_heads * s.topk) +
                  4 * double(s.q_heads * s.topk)};
    }
  }
  return {};
}

BufferPlan BufferPlan::of(const std::vector<Kernel>& kernels) {
  BufferPlan p;
  for (Kernel k : kernels) {
    p.hsa |= k == Kernel::hsa_fwd || k == Kernel::hsa_fwd_bwd || k == Kernel::hsa_decode;
    p.hsa_grad |= k == Kernel::hsa_fwd_bwd;
    p.swa |= k == Kernel::swa_fwd || k == Kernel::swa_fwd_bwd;
    p.swa_grad |= k == Kernel::swa_fwd_bwd;
    p.retrieval |= k == Kernel::retrieval || k == Kernel::retrieval_scalar || k == Kernel::retrieval_decode ||
                   k == Kernel::retrieval_decode_scalar || k == Kernel::retrieval_mma ||
                   k == Kernel::retrieval_gated;
  }
  return p;
}

double device_bytes_needed(const BufferPlan& p, const KernelShape& s) {
  const double e = KernelShape::kElementBytes, L = double(s.len);
  const double q_tensor = L * double(s.q_heads * s.head_dim) * e;
  const double kv_tensor = double(s.chunks() * s.chunk_size * s.kv_heads * s.head_dim) * e;
  const double swa_kv_tensor = L * double(s.kv_heads * s.head_dim) * e;
  const double slots = L * double(s.kv_heads * s.topk);
  double bytes = 0, scratch = 0;
  if (p.hsa || p.swa) bytes += 2 * q_tensor;                    // q, out
  if (p.hsa_grad || p.swa_grad) bytes += 2 * q_tensor;          // dout, dq
  if (p.hsa) {
    bytes += 2 * kv_tensor + 8 * slots + L * double(s.q_heads * s.topk) * 4;  // K, V, indices, weights, lse
    // One call's scratch (cuda/hsa_attention.cu): bf16 partials [slots, G, D] and the routing (7 i32 arrays per slot,
    // the radix sort's buffers included, and one per chunk).
    scratch = slots * double(s.group() * s.head_dim) * e + 28 * slots + 4.0 * double(s.kv_heads * s.chunks());
  }
  if (p.hsa_grad) {
    bytes += 2 * kv_tensor + 4 * slots;  // dK, dV, dw
    // The backward's f32 dK/dV partials of split chunks, sized by their host bound (backward_mma): the smaller of
    // slots / P + chunks and 2 slots / P, P = 32 tiles of 64 / G entries, 2 S D floats each (5 GiB at 1M tokens).
    const double per_block = double(32 * std::max<int64_t>(1, 64 / s.group()));
    const double parts = std::min(std::floor(slots / per_block) + double(s.kv_heads * s.chunks()),
                                  std::floor(2 * slots / per_block));
    scratch += parts * 2 * double(s.chunk_size * s.head_dim) * 4;
  }
  if (p.swa) bytes += 2 * swa_kv_tensor + 4 * L * double(s.q_heads);           // k, v, lse
  if (p.swa_grad) bytes += 2 * swa_kv_tensor + 4 * L * double(s.q_heads);      // dk, dv, delta
  if (p.retrieval)  // qr, landmarks, indices, weights, scores
    bytes += (L + double(s.chunks())) * double(s.kv_heads * s.retrieval_dim) * e + 12 * slots;
  return bytes + scratch;
}

}  // namespace hsa::bench

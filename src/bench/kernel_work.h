// What `hsa bench kernels` measures, as arithmetic: the benchmark shape, the kernels, the FLOPs and the bytes each
// kernel cannot avoid, and the device memory a length needs. Free of CUDA so it is unit-tested on every machine
// (tests/unit/kernel_bench_test.cpp); src/bench/kernel_bench.cpp runs the kernels.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hsa::bench {

// hsa_decode: the forward for one new token (the last position) against the memory of all L tokens, as in
// generation (the decode path of the CUDA HSA attention). retrieval runs the kernel the op picks (the tensor-core
// one at this shape), retrieval_scalar the first, one-thread-per-row kernel on the same inputs; retrieval_decode
// and retrieval_decode_scalar score the last token alone against all landmarks (the op's pick for one row is the
// split kernel). retrieval_mma and retrieval_gated run the two tensor-core kernels by name, whichever the op picks
// (cuda/retrieval.h: kRetrievalPreferGated), to time them side by side.
enum class Kernel {
  hsa_fwd,
  hsa_fwd_bwd,
  retrieval,
  swa_fwd,
  swa_fwd_bwd,
  hsa_decode,
  retrieval_scalar,
  retrieval_decode,
  retrieval_decode_scalar,
  retrieval_mma,
  retrieval_gated
};

const std::vector<Kernel>& all_kernels();  // in the order above
const char* kernel_name(Kernel kernel);    // "hsa_fwd", ...
// "hsa_fwd,swa_fwd" -> kernels, in the order given, without repeats; throws naming the valid names.
std::vector<Kernel> parse_kernels(const std::string& list);

// The benchmark shape: bf16, B = 1, HQ = 16 query heads over H = 1 KV head, D = 128, chunks of S = 64, top-K = 8
// chunks per token, retrieval dim dr = 128, sliding window W = 512 (the SWA kernels). Fields are variables so the
// tests can check the formulas on a small hand-computed case.
struct KernelShape {
  int64_t len = 0;  // L
  int64_t q_heads = 16, kv_heads = 1, head_dim = 128, chunk_size = 64, topk = 8, retrieval_dim = 128, window = 512;
  int64_t chunks() const { return len / chunk_size; }  // C
  int64_t group() const { return q_heads / kv_heads; }  // G
  static constexpr int64_t kElementBytes = 2;           // bf16
};

// "4096,16K,1M" -> lengths (K = 1024, M = 1024^2), ascending, without repeats. Each must be a positive multiple of
// chunk_size (every chunk complete); throws naming the bad entry.
std::vector<int64_t> parse_lengths(const std::string& list, int64_t chunk_size = KernelShape{}.chunk_size);
std::string length_label(int64_t len);  // 65536 -> "64K", 1048576 -> "1M", 1000 -> "1000"

// Filled (token, KV head, slot) entries when token t selects min(K, t / S) distinct complete chunks, as the
// benchmark's indices do (and as causal retrieval does once a token sees K chunks).
int64_t filled_slots(const KernelShape& s);
// Visible (token, KV head, chunk) pairs of causal retrieval: token t scores its t / S complete chunks.
int64_t retrieval_pairs(const KernelShape& s);
// Visible (query, key) pairs of one head under the causal window: sum over i of min(i + 1, W).
int64_t window_pairs(const KernelShape& s);

struct Work {
  double flops = 0;  // multiply-adds count 2
  double bytes = 0;  // HBM bytes the kernel must move at least: each input read once, each output written once
};
Work kernel_work(Kernel kernel, const KernelShape& s);

// Which device buffers a run needs; HSA and SWA share the query-shaped ones (q, out, dout, dq).
struct BufferPlan {
  bool hsa = false, hsa_grad = false, swa = false, swa_grad = false, retrieval = false;  // retrieval: any of the 4
  static BufferPlan of(const std::vector<Kernel>& kernels);
};
// Device bytes of the plan's buffers at this shape plus the largest scratch one kernel call allocates (the HSA
// kernels' per-entry partials and routing arrays).
double device_bytes_needed(const BufferPlan& plan, const KernelShape& s);

}  // namespace hsa::bench

// CUDA Mixture-of-Experts (see moe.h for shapes and the design). Kernels here are the glue around the GEMMs:
// router top-k/softmax, expert statistics, the grouping permutation and expert offsets, the balance loss, row
// gathers, the per-token slot sums, and the gate / router gradients.
// Version 1: per-expert cuBLASLt GEMMs launched from the host, sized by counts copied to the host once per call.
// Version 2 (this): the routed experts' GEMMs are grouped GEMMs (cuda/grouped_gemm.h) over offsets that stay on
// the device, one launch per GEMM kind; shared experts (N rows each, host-known) stay cuBLASLt calls; the balance
// loss is a device scalar. Nothing waits for the device; the existing elementwise swiglu kernels run over all
// entries at once.
#include "cuda/moe.h"

#include "cuda/gemm.h"
#include "cuda/grouped_gemm.h"
#include "cuda/hsa_support.h"
#include "cuda/kernel_util.cuh"
#include "cuda/swiglu.h"

#include <hsa/error.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>

#include <climits>
#include <memory>
#include <type_traits>
#include <vector>

namespace hsa::cuda {

namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kThreads = 256;  // the warp-per-row kernels run 8 rows per block

__device__ __forceinline__ int lane_id() { return threadIdx.x & 31; }
__device__ __forceinline__ int64_t global_warp() { return global_thread() >> 5; }
__device__ __forceinline__ int64_t grid_warps() { return grid_threads() >> 5; }
// Blocks for a grid-stride loop that gives each of `rows` rows its own warp.
unsigned warp_grid(int64_t rows) { return grid_for(rows * 32, kThreads); }

// ---- router forward ---------------------------------------------------------------------------------------------

// The top-k order: higher logit first, the lower index on ties (the CPU's strict '>' scan). NaN ranks as -inf so
// every pass still finds an expert to pick (the outputs are NaN anyway, but no id is ever out of range).
__device__ __forceinline__ float rank_value(float logit) { return isnan(logit) ? -INFINITY : logit; }
__device__ __forceinline__ bool ranks_before(float va, int32_t ea, float vb, int32_t eb) {
  return va > vb || (va == vb && ea < eb);
}

// probs [N, E] holds the logits on entry and the softmax on exit; experts, gates [N, k]. One warp per token.
// Pass j picks the best expert ranked after pick j-1: the picks are a prefix of the order, so no 'taken' list.
// The butterfly leaves the same pick in every lane. The lane that owns slot j (j % 32) stages the pick's logit in
// gates and later turns it into the gate itself, so no lane reads another lane's global writes.
__global__ void router_forward_kernel(float* probs, int32_t* experts, float* gates, int64_t n, int64_t num_experts,
                                      int64_t topk) {
  const int lane = lane_id();
  for (int64_t t = global_warp(); t < n; t += grid_warps()) {
    float* p = probs + t * num_experts;
    int32_t* chosen = experts + t * topk;
    float* g = gates + t * topk;
    float prev_v = 0.f, max_logit = 0.f;
    int32_t prev_e = -1;  // no pick yet
    for (int64_t j = 0; j < topk; ++j) {
      float best_v = -INFINITY;
      int32_t best_e = -1;
      for (int64_t e = lane; e < num_experts; e += 32) {
        const float v = rank_value(p[e]);
        if (prev_e >= 0 && !ranks_before(prev_v, prev_e, v, int32_t(e))) continue;  // picked in an earlier pass
        if (best_e < 0 || ranks_before(v, int32_t(e), best_v, best_e)) best_v = v, best_e = int32_t(e);
      }
      for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(kFullMask, best_v, o);
        const int32_t oe = __shfl_xor_sync(kFullMask, best_e, o);
        if (oe >= 0 && (best_e < 0 || ranks_before(ov, oe, best_v, best_e))) best_v = ov, best_e = oe;
      }
      if (j == 0) max_logit = best_v;
      if (lane == j % 32) {
        chosen[j] = best_e;
        g[j] = best_v;
      }
      prev_v = best_v;
      prev_e = best_e;
    }
    float sum = 0.f;
    for (int64_t e = lane; e < num_experts; e += 32) sum += expf(p[e] - max_logit);
    sum = warp_sum(sum);
    for (int64_t e = lane; e < num_experts; e += 32) p[e] = expf(p[e] - max_logit) / sum;
    // The same expression as probs[chosen[j]] above, so the gates renormalise exactly the stored probs.
    float chosen_sum = 0.f;
    for (int64_t j = lane; j < topk; j += 32) {
      g[j] = expf(g[j] - max_logit) / sum;
      chosen_sum += g[j];
    }
    chosen_sum = warp_sum(chosen_sum);
    for (int64_t j = lane; j < topk; j += 32) g[j] /= chosen_sum;
  }
}

// ---- routing: statistics and the grouping permutation ---------------------------------------------------------

// One block per expert e (blockDim = kThreads): stats[e] = how many of the N*k slots chose e, stats[E + e] =
// sum_t probs[t, e] (0 when probs is null), each summed in a fixed order (strided per thread, then a tree). The
// block of expert 0 also reports a slot whose id is outside [0, E).
__global__ void expert_stats_kernel(const int32_t* experts, const float* probs, int64_t n, int64_t num_experts,
                                    int64_t topk, double* stats, long long* error, int code) {
  __shared__ double s_count[kThreads], s_prob[kThreads];
  const int tid = threadIdx.x;
  for (int64_t e = blockIdx.x; e < num_experts; e += gridDim.x) {
    double count = 0.0, prob = 0.0;
    for (int64_t i = tid; i < n * topk; i += blockDim.x) {
      const int32_t id = experts[i];
      count += id == e ? 1.0 : 0.0;
      if (e == 0 && (id < 0 || id >= num_experts)) report_input_error(error, code, i, id, num_experts);
    }
    if (probs)
      for (int64_t t = tid; t < n; t += blockDim.x) prob += probs[t * num_experts + e];
    s_count[tid] = count;
    s_prob[tid] = prob;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
      if (tid < half) {
        s_count[tid] += s_count[tid + half];
        s_prob[tid] += s_prob[tid + half];
      }
      __syncthreads();
    }
    if (tid == 0) {
      stats[e] = s_count[0];
      stats[num_experts + e] = s_prob[0];
    }
    __syncthreads();  // the next expert reuses the arrays
  }
}

// The radix sort's input: slots[i] = i and keys[i] = experts[i], with an id outside [0, E) (reported by
// expert_stats_kernel) replaced by E, so such an entry sorts after every expert's rows and no group holds it.
__global__ void sort_input_kernel(const int32_t* experts, int64_t entries, int64_t num_experts, int32_t* slots,
                                  uint32_t* keys) {
  for (int64_t i = global_thread(); i < entries; i += grid_threads()) {
    const int32_t id = experts[i];
    slots[i] = int32_t(i);
    keys[i] = id >= 0 && id < num_experts ? uint32_t(id) : uint32_t(num_experts);
  }
}

// One block (kThreads): offsets [E + 1] = the exclusive scan of the expert counts stats[0, E), i.e. each expert's
// rows in the expert-grouped order; with aux_loss, *aux_loss = coef * E * sum_e (count_e / (N k)) (psum_e / N),
// psum_e = stats[E + e] (cpu::moe_load_balance_loss times coef; 0 for N = 0). Fixed summation order.
__global__ void routing_summary_kernel(const double* stats, int64_t num_experts, int64_t n, int64_t topk,
                                       int32_t* offsets, double coef, double* aux_loss) {
  using Scan = cub::BlockScan<int32_t, kThreads>;
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ union {
    typename Scan::TempStorage scan;
    typename Reduce::TempStorage reduce;
  } temp;
  int32_t carry = 0;
  double loss = 0.0;  // this thread's experts
  for (int64_t base = 0; base < num_experts; base += kThreads) {
    const int64_t e = base + threadIdx.x;
    int32_t count = 0, first = 0, total = 0;
    if (e < num_experts) {
      count = int32_t(stats[e]);
      loss += stats[e] * stats[num_experts + e];
    }
    Scan(temp.scan).ExclusiveSum(count, first, total);
    if (e < num_experts) offsets[e] = carry + first;
    carry += total;
    __syncthreads();  // temp is reused
  }
  if (threadIdx.x == 0) offsets[num_experts] = carry;
  if (!aux_loss) return;
  loss = Reduce(temp.reduce).Sum(loss);
  if (threadIdx.x == 0)
    *aux_loss = n > 0 ? coef * double(num_experts) * loss / (double(n * topk) * double(n)) : 0.0;
}

// pos_of[order[i]] = i: where each (token, slot) entry sits in the expert-grouped order.
__global__ void invert_kernel(const int32_t* order, int32_t* pos_of, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) pos_of[order[i]] = int32_t(i);
}

// ---- rows -----------------------------------------------------------------------------------------------------

// dst [rows, dm]: row i is src's row of entry i's token (order[i] = t * k + j). Packs of 16 bytes when dm and the
// pointers allow (a pack never straddles a row then); one row division per pack.
template <class D>
__global__ void gather_rows_kernel(const D* src, const int32_t* order, int64_t rows, int64_t topk, int64_t dm,
                                   bool packed, D* dst) {
  for_each_pack<kPack<D>>(rows * dm, packed, [&](int64_t idx, auto width) {
    constexpr int W = decltype(width)::value;
    const int64_t i = idx / dm, c = idx - i * dm;
    float v[W];
    load_pack<W>(src + int64_t(order[i]) / topk * dm + c, v);
    store_pack<W>(dst + idx, v);
  });
}

// out[t] = base[t] + sum_j scale[t, j] * rows[pos_of[t, j]] + sum_s rows[N*k + s*N + t], in that order, in f32.
// rows [N*k + NS*N, dm]: the routed entries in expert-grouped order, then each shared expert's N token rows.
// base [N, dm] f32 and scale [N, k] f32 may be null (0 and 1). Packs as gather_rows_kernel.
template <class D>
__global__ void combine_rows_kernel(const float* base, const float* scale, const int32_t* pos_of, const D* rows,
                                    int64_t n, int64_t topk, int64_t num_shared, int64_t dm, bool packed, D* out) {
  for_each_pack<kPack<D>>(n * dm, packed, [&](int64_t idx, auto width) {
    constexpr int W = decltype(width)::value;
    const int64_t t = idx / dm, c = idx - t * dm;
    float acc[W], v[W];
#pragma unroll
    for (int u = 0; u < W; ++u) acc[u] = base ? base[idx + u] : 0.f;
    for (int64_t j = 0; j < topk; ++j) {
      const float s = scale ? scale[t * topk + j] : 1.f;
      load_pack<W>(rows + int64_t(pos_of[t * topk + j]) * dm + c, v);
#pragma unroll
      for (int u = 0; u < W; ++u) acc[u] += s * v[u];
    }
    for (int64_t sh = 0; sh < num_shared; ++sh) {
      load_pack<W>(rows + (n * topk + sh * n + t) * dm + c, v);
#pragma unroll
      for (int u = 0; u < W; ++u) acc[u] += v[u];
    }
    store_pack<W>(out + idx, acc);
  });
}

template <class D>
void gather_rows(const D* src, const int32_t* order, int64_t rows, int64_t topk, int64_t dm, D* dst) {
  constexpr int V = kPack<D>;
  const bool packed = dm % V == 0 && packs_aligned<V>(src, dst);
  gather_rows_kernel<<<grid_for_packs(rows * dm, packed ? V : 1, kThreads), kThreads, 0, stream()>>>(
      src, order, rows, topk, dm, packed, dst);
  check_launch("gather_rows_kernel");
}

template <class D>
void combine_rows(const float* base, const float* scale, const int32_t* pos_of, const D* rows, int64_t n,
                  int64_t topk, int64_t num_shared, int64_t dm, D* out) {
  constexpr int V = kPack<D>;
  const bool packed = dm % V == 0 && packs_aligned<V>(rows, out);
  combine_rows_kernel<<<grid_for_packs(n * dm, packed ? V : 1, kThreads), kThreads, 0, stream()>>>(
      base, scale, pos_of, rows, n, topk, num_shared, dm, packed, out);
  check_launch("combine_rows_kernel");
}

// ---- backward -------------------------------------------------------------------------------------------------

// One warp per routed entry i (rows of ffn, expert-grouped): dgates[order[i]] = <dh_i, h_i> (dloss/dgate, with dh
// the ungated dy w_down and h the ungated hidden), then dh_i and h_i are scaled by the gate: the swiglu backward
// and dW_down need the gated values.
template <class D>
__global__ void gate_entries_kernel(const int32_t* order, const float* gates, int64_t entries, int64_t ffn, D* dh,
                                    D* h, float* dgates) {
  const int lane = lane_id();
  for (int64_t i = global_warp(); i < entries; i += grid_warps()) {
    D* dhi = dh + i * ffn;
    D* hi = h + i * ffn;
    float dot = 0.f;
    for (int64_t c = lane; c < ffn; c += 32) dot += to_f32(dhi[c]) * to_f32(hi[c]);
    dot = warp_sum(dot);
    const int32_t slot = order[i];
    const float gate = gates[slot];
    for (int64_t c = lane; c < ffn; c += 32) {
      dhi[c] = from_f32<D>(gate * to_f32(dhi[c]));
      hi[c] = from_f32<D>(gate * to_f32(hi[c]));
    }
    if (lane == 0) dgates[slot] = dot;
  }
}

// One warp per token: dlogits [N, E] = p * (dp - <p, dp>) (softmax backward), where dp[e] = aux_per_count *
// count[e] (the load-balancing term: f_e is a constant count) plus, for the chosen experts, the gradient through
// the renormalisation gate_j = p_j / S: dp_j += (dgate_j - sum_i dgate_i gate_i) / S.
__global__ void router_backward_kernel(const float* probs, const int32_t* experts, const float* gates,
                                       const float* dgates, const double* counts, double aux_per_count, int64_t n,
                                       int64_t num_experts, int64_t topk, float* dlogits) {
  const int lane = lane_id();
  for (int64_t t = global_warp(); t < n; t += grid_warps()) {
    const float* p = probs + t * num_experts;
    const int32_t* chosen = experts + t * topk;
    const float* g = gates + t * topk;
    const float* dg = dgates + t * topk;
    float chosen_sum = 0.f, dg_dot_g = 0.f;
    for (int64_t j = lane; j < topk; j += 32) {
      const int32_t e = chosen[j];
      if (e >= 0 && e < num_experts) chosen_sum += p[e];  // a bad id (reported, thrown at synchronize) reads nothing
      dg_dot_g += dg[j] * g[j];
    }
    chosen_sum = warp_sum(chosen_sum);
    dg_dot_g = warp_sum(dg_dot_g);
    auto dp = [&](int64_t e) {
      float v = float(aux_per_count * counts[e]);
      for (int64_t j = 0; j < topk; ++j)
        if (chosen[j] == e) v += (dg[j] - dg_dot_g) / chosen_sum;
      return v;
    };
    float p_dot_dp = 0.f;
    for (int64_t e = lane; e < num_experts; e += 32) p_dot_dp += p[e] * dp(e);
    p_dot_dp = warp_sum(p_dot_dp);
    float* dl = dlogits + t * num_experts;
    for (int64_t e = lane; e < num_experts; e += 32) dl[e] = p[e] * (dp(e) - p_dot_dp);
  }
}

// ---- host side --------------------------------------------------------------------------------------------------

// The router runs in f32 for both storage types: src itself for T = float, a converted copy (in scratch) for bf16.
template <class T>
const float* as_f32(const T* src, int64_t n, std::unique_ptr<DeviceBuffer<float>>& scratch) {
  if constexpr (std::is_same_v<T, float>) {
    return src;
  } else {
    scratch = std::make_unique<DeviceBuffer<float>>(n);
    hsa_convert(DType::bf16, src, DType::f32, scratch->get(), n);
    return scratch->get();
  }
}

// The N*k (token, slot) entries grouped by expert: a stable counting sort of the slots on their expert id (cub's
// radix sort over the id's bits), so tokens ascend inside each expert and every later sum has a fixed order.
// Everything stays on the device: the expert offsets feed the grouped GEMMs, the balance loss a device scalar.
class Routing {
 public:
  // probs may be null (backward: no probability sums). aux_loss (forward, with probs): the device double that
  // receives aux_coef * E * sum_e f_e P_e. An expert id outside [0, E) is recorded for the next synchronize() (it
  // throws there); until then its entry is in no expert's rows and every kernel stays in bounds.
  Routing(const int32_t* experts, const float* probs, const MoeDims& d, int error_code, double aux_coef,
          double* aux_loss)
      : stats_(2 * d.num_experts), order_(d.entries()), pos_of_(d.entries()), offsets_(d.num_experts + 1) {
    const int64_t entries = d.entries(), ne = d.num_experts;
    const unsigned blocks = unsigned(std::min<int64_t>(ne, 65535));
    expert_stats_kernel<<<blocks, kThreads, 0, stream()>>>(experts, probs, d.n, ne, d.topk, stats_.get(),
                                                          input_error_record(), error_code);
    check_launch("expert_stats_kernel");
    routing_summary_kernel<<<1, kThreads, 0, stream()>>>(stats_.get(), ne, d.n, d.topk, offsets_.get(), aux_coef,
                                                         aux_loss);
    check_launch("routing_summary_kernel");
    if (entries == 0) return;
    int end_bit = 1;  // keys in [0, E] fit in end_bit bits
    while ((int64_t(1) << end_bit) <= ne) ++end_bit;
    DeviceBuffer<int32_t> slots(entries);
    DeviceBuffer<uint32_t> keys(entries), sorted_keys(entries);
    sort_input_kernel<<<grid_for(entries, kThreads), kThreads, 0, stream()>>>(experts, entries, ne, slots.get(),
                                                                              keys.get());
    check_launch("sort_input_kernel");
    size_t temp_bytes = 0;
    HSA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys.get(), sorted_keys.get(), slots.get(),
                                                   order_.get(), int(entries), 0, end_bit, stream()));
    DeviceBuffer<char> temp(static_cast<int64_t>(temp_bytes));
    HSA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.get(), temp_bytes, keys.get(), sorted_keys.get(), slots.get(),
                                                   order_.get(), int(entries), 0, end_bit, stream()));
    invert_kernel<<<grid_for(entries, kThreads), kThreads, 0, stream()>>>(order_.get(), pos_of_.get(), entries);
    check_launch("invert_kernel");
  }

  const int32_t* order() const { return order_.get(); }     // [entries]: the slot t * k + j of each entry
  const int32_t* pos_of() const { return pos_of_.get(); }   // [entries]: the entry of each slot
  const double* counts() const { return stats_.get(); }     // [E]
  const int32_t* offsets() const { return offsets_.get(); } // [E + 1]: expert e's entries are [offsets[e], [e + 1])

 private:
  DeviceBuffer<double> stats_;  // [2E]: counts, then probability sums
  DeviceBuffer<int32_t> order_, pos_of_, offsets_;
};

// One shared expert's GEMM operands: it reads x (or dy) itself, all N rows. Its results go to rows [row0, row0 + N)
// of the per-entry buffers [N*k + NS*N, dm] and elements [act0, act0 + N * Fs) of the activation buffers.
template <class T> struct SharedJob {
  const T* w_gate;
  const T* w_up;
  const T* w_down;
  T* d_gate;  // gradients: backward only
  T* d_up;
  T* d_down;
  int64_t row0, act0;
};

template <class T>
std::vector<SharedJob<T>> shared_jobs(const MoeDims& d, const MoeDeviceWeights<T>& w,
                                      const MoeDeviceGrads<T>* dw) {
  std::vector<SharedJob<T>> jobs;
  const int64_t stride = d.ffn_shared * d.dm;
  for (int64_t s = 0; s < d.num_shared; ++s) {
    SharedJob<T> j{w.shared_gate + s * stride, w.shared_up + s * stride, w.shared_down + s * stride, nullptr,
                   nullptr, nullptr, d.entries() + s * d.n, d.entries() * d.ffn + s * d.n * d.ffn_shared};
    if (dw) {
      j.d_gate = dw->shared_gate + s * stride;
      j.d_up = dw->shared_up + s * stride;
      j.d_down = dw->shared_down + s * stride;
    }
    jobs.push_back(j);
  }
  return jobs;
}

void check_sizes(const MoeDims& d) {
  const int64_t rows = d.entries() + d.num_shared * d.n;
  HSA_CHECK(rows < INT32_MAX, "moe cuda: N*k + NS*N = {} entry rows (N = {}, k = {}, NS = {}) exceed 2^31 - 1", rows,
            d.n, d.topk, d.num_shared);
}

}  // namespace

template <class T>
void moe_forward(const T* x, const MoeDeviceWeights<T>& w, const MoeDims& d, double aux_coef, T* y, float* probs,
                 int32_t* experts, float* gates, T* act_gate, T* act_up, double* aux_loss) {
  // The router's own ids are always in range; the statistics kernel checks them anyway.
  static const int code = input_error_code("moe_forward: the router picked an expert outside [0, E)");
  check_sizes(d);
  const int64_t n = d.n, dm = d.dm, ne = d.num_experts, k = d.topk, entries = d.entries(), ffn = d.ffn;
  const int64_t stride = ffn * dm;  // one routed expert's weight matrix
  {
    std::unique_ptr<DeviceBuffer<float>> x32, router32;
    gemm<float>(false, true, n, ne, dm, 1.f, as_f32(x, n * dm, x32), dm, as_f32(w.router, ne * dm, router32), dm,
                0.f, probs, ne);  // logits
  }
  router_forward_kernel<<<warp_grid(n), kThreads, 0, stream()>>>(probs, experts, gates, n, ne, k);
  check_launch("router_forward_kernel");
  Routing r(experts, probs, d, code, aux_coef, aux_loss);

  DeviceBuffer<T> xg(entries * dm), h(d.act_elements()), out((entries + d.num_shared * n) * dm);
  gather_rows(dev(x), r.order(), entries, k, dm, dev(xg.get()));
  // Routed experts: one grouped GEMM per kind over the expert-grouped rows; shared experts over x itself.
  grouped_gemm_rows<T>(r.offsets(), ne, entries, ffn, dm, xg.get(), dm, w.w_gate, dm, stride, true, 0.f, act_gate,
                       ffn);
  grouped_gemm_rows<T>(r.offsets(), ne, entries, ffn, dm, xg.get(), dm, w.w_up, dm, stride, true, 0.f, act_up, ffn);
  const int64_t fs = d.ffn_shared;
  const std::vector<SharedJob<T>> jobs = shared_jobs<T>(d, w, nullptr);
  for (const SharedJob<T>& j : jobs) {
    gemm<T>(false, true, n, fs, dm, 1.f, x, dm, j.w_gate, dm, 0.f, act_gate + j.act0, fs);
    gemm<T>(false, true, n, fs, dm, 1.f, x, dm, j.w_up, dm, 0.f, act_up + j.act0, fs);
  }
  swiglu_forward<T>(act_gate, act_up, h.get(), d.act_elements());
  grouped_gemm_rows<T>(r.offsets(), ne, entries, dm, ffn, h.get(), ffn, w.w_down, ffn, stride, true, 0.f, out.get(),
                       dm);
  for (const SharedJob<T>& j : jobs)
    gemm<T>(false, true, n, dm, fs, 1.f, h.get() + j.act0, fs, j.w_down, fs, 0.f, out.get() + j.row0 * dm, dm);
  combine_rows(nullptr, gates, r.pos_of(), dev(out.get()), n, k, d.num_shared, dm, dev(y));
}

template <class T>
void moe_backward(const T* dy, double aux_scale, const T* x, const MoeDeviceWeights<T>& w, const MoeDims& d,
                  const float* probs, const int32_t* experts, const float* gates, const T* act_gate, const T* act_up,
                  T* dx, const MoeDeviceGrads<T>& dw) {
  static const int code = input_error_code("moe_backward: 'fwd.experts' holds an expert id outside [0, E)");
  check_sizes(d);
  const int64_t n = d.n, dm = d.dm, ne = d.num_experts, k = d.topk, entries = d.entries(), ffn = d.ffn;
  const int64_t act = d.act_elements(), stride = ffn * dm, fs = d.ffn_shared;
  Routing r(experts, nullptr, d, code, 0.0, nullptr);

  // Per entry row: x and dy gathered; in the activation layout: h (then gate * h), dh (then gate * dh), and the
  // gradients at the two pre-activations.
  DeviceBuffer<T> xg(entries * dm), dyg(entries * dm), h(act), dh(act), d_act_gate(act), d_act_up(act);
  DeviceBuffer<T> dx_rows((entries + d.num_shared * n) * dm);
  DeviceBuffer<float> dgates(entries);
  gather_rows(dev(x), r.order(), entries, k, dm, dev(xg.get()));
  gather_rows(dev(dy), r.order(), entries, k, dm, dev(dyg.get()));
  const std::vector<SharedJob<T>> jobs = shared_jobs<T>(d, w, &dw);

  // dh = dy w_down: d(out) is dy itself, the gate comes in below.
  grouped_gemm_rows<T>(r.offsets(), ne, entries, ffn, dm, dyg.get(), dm, w.w_down, ffn, stride, false, 0.f, dh.get(),
                       ffn);
  for (const SharedJob<T>& j : jobs)
    gemm<T>(false, false, n, fs, dm, 1.f, dy, dm, j.w_down, fs, 0.f, dh.get() + j.act0, fs);
  swiglu_forward<T>(act_gate, act_up, h.get(), act);
  gate_entries_kernel<<<warp_grid(entries), kThreads, 0, stream()>>>(r.order(), gates, entries, d.ffn,
                                                                      dev(dh.get()), dev(h.get()), dgates.get());
  check_launch("gate_entries_kernel");
  swiglu_backward<T>(dh.get(), act_gate, act_up, d_act_gate.get(), d_act_up.get(), act);
  // Weight gradients over each expert's rows (an expert with no rows gets zeros), and each entry's dx row.
  const T *dg = d_act_gate.get(), *du = d_act_up.get();
  grouped_gemm_k<T>(r.offsets(), ne, ffn, dm, dg, ffn, xg.get(), dm, 0.f, dw.w_gate, dm, stride);
  grouped_gemm_k<T>(r.offsets(), ne, ffn, dm, du, ffn, xg.get(), dm, 0.f, dw.w_up, dm, stride);
  grouped_gemm_k<T>(r.offsets(), ne, dm, ffn, dyg.get(), dm, h.get(), ffn, 0.f, dw.w_down, ffn, stride);
  grouped_gemm_rows<T>(r.offsets(), ne, entries, dm, ffn, dg, ffn, w.w_gate, dm, stride, false, 0.f, dx_rows.get(),
                       dm);
  grouped_gemm_rows<T>(r.offsets(), ne, entries, dm, ffn, du, ffn, w.w_up, dm, stride, false, 1.f, dx_rows.get(), dm);
  for (const SharedJob<T>& j : jobs) {
    T* dxr = dx_rows.get() + j.row0 * dm;
    gemm<T>(true, false, fs, dm, n, 1.f, dg + j.act0, fs, x, dm, 0.f, j.d_gate, dm);
    gemm<T>(true, false, fs, dm, n, 1.f, du + j.act0, fs, x, dm, 0.f, j.d_up, dm);
    gemm<T>(true, false, dm, fs, n, 1.f, dy, dm, h.get() + j.act0, fs, 0.f, j.d_down, fs);
    gemm<T>(false, false, n, dm, fs, 1.f, dg + j.act0, fs, j.w_gate, dm, 0.f, dxr, dm);
    gemm<T>(false, false, n, dm, fs, 1.f, du + j.act0, fs, j.w_up, dm, 1.f, dxr, dm);
  }

  // Router, in f32 like the forward: dlogits, then drouter = dlogits^T x and dx += dlogits router.
  DeviceBuffer<float> dlogits(n * ne), dx_router(n * dm);
  const double aux_per_count = n > 0 ? aux_scale * double(ne) / double(entries) / double(n) : 0.0;
  router_backward_kernel<<<warp_grid(n), kThreads, 0, stream()>>>(probs, experts, gates, dgates.get(),
                                                                   r.counts(), aux_per_count, n, ne, k,
                                                                   dlogits.get());
  check_launch("router_backward_kernel");
  {
    std::unique_ptr<DeviceBuffer<float>> x32, router32;
    const float* xf = as_f32(x, n * dm, x32);
    if constexpr (std::is_same_v<T, float>) {
      gemm<float>(true, false, ne, dm, n, 1.f, dlogits.get(), ne, xf, dm, 0.f, dw.router, dm);
    } else {
      DeviceBuffer<float> drouter(ne * dm);
      gemm<float>(true, false, ne, dm, n, 1.f, dlogits.get(), ne, xf, dm, 0.f, drouter.get(), dm);
      hsa_convert(DType::f32, drouter.get(), DType::bf16, dw.router, ne * dm);
    }
    gemm<float>(false, false, n, dm, ne, 1.f, dlogits.get(), ne, as_f32(w.router, ne * dm, router32), dm, 0.f,
                dx_router.get(), dm);
  }
  combine_rows(dx_router.get(), nullptr, r.pos_of(), dev(dx_rows.get()), n, k, d.num_shared, dm, dev(dx));
}

#define HSA_MOE_INSTANTIATE(T)                                                                                        \
  template void moe_forward<T>(const T*, const MoeDeviceWeights<T>&, const MoeDims&, double, T*, float*,       \
                               int32_t*, float*, T*, T*, double*);                                                    \
  template void moe_backward<T>(const T*, double, const T*, const MoeDeviceWeights<T>&, const MoeDims&,          \
                                const float*, const int32_t*, const float*, const T*, const T*, T*,                   \
                                const MoeDeviceGrads<T>&);
HSA_MOE_INSTANTIATE(float)
HSA_MOE_INSTANTIATE(bf16)
#undef HSA_MOE_INSTANTIATE

}  // namespace hsa::cuda

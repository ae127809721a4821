// CUDA Mixture-of-Experts (see moe.h for shapes and the design). Kernels here are the glue around the GEMMs:
// router top-k/softmax, expert statistics, the grouping permutation, row gathers, the per-token slot sums, and
// the gate / router gradients. Version 1: per-expert cuBLASLt GEMMs launched from the host (E small launches
// per GEMM kind), the existing elementwise swiglu kernels over all entries at once.
#include "cuda/moe.h"

#include "cuda/gemm.h"
#include "cuda/hsa_support.h"
#include "cuda/kernel_util.cuh"
#include "cuda/swiglu.h"

#include <hsa/error.h>

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

__global__ void iota_kernel(int32_t* v, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) v[i] = int32_t(i);
}

// pos_of[order[i]] = i: where each (token, slot) entry sits in the expert-grouped order.
__global__ void invert_kernel(const int32_t* order, int32_t* pos_of, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) pos_of[order[i]] = int32_t(i);
}

// ---- rows -----------------------------------------------------------------------------------------------------

// dst [rows, dm]: row i is src's row of entry i's token (order[i] = t * k + j).
template <class D>
__global__ void gather_rows_kernel(const D* src, const int32_t* order, int64_t rows, int64_t topk, int64_t dm,
                                   D* dst) {
  for (int64_t idx = global_thread(); idx < rows * dm; idx += grid_threads()) {
    const int64_t i = idx / dm, c = idx - i * dm;
    dst[idx] = src[int64_t(order[i]) / topk * dm + c];
  }
}

// out[t] = base[t] + sum_j scale[t, j] * rows[pos_of[t, j]] + sum_s rows[N*k + s*N + t], in that order, in f32.
// rows [N*k + NS*N, dm]: the routed entries in expert-grouped order, then each shared expert's N token rows.
// base [N, dm] f32 and scale [N, k] f32 may be null (0 and 1).
template <class D>
__global__ void combine_rows_kernel(const float* base, const float* scale, const int32_t* pos_of, const D* rows,
                                    int64_t n, int64_t topk, int64_t num_shared, int64_t dm, D* out) {
  for (int64_t idx = global_thread(); idx < n * dm; idx += grid_threads()) {
    const int64_t t = idx / dm, c = idx - t * dm;
    float acc = base ? base[idx] : 0.f;
    for (int64_t j = 0; j < topk; ++j) {
      const float s = scale ? scale[t * topk + j] : 1.f;
      acc += s * to_f32(rows[int64_t(pos_of[t * topk + j]) * dm + c]);
    }
    for (int64_t s = 0; s < num_shared; ++s) acc += to_f32(rows[(n * topk + s * n + t) * dm + c]);
    out[idx] = from_f32<D>(acc);
  }
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
      chosen_sum += p[chosen[j]];
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
class Routing {
 public:
  // probs may be null (backward: no probability sums needed). Throws on an expert id outside [0, E).
  Routing(const int32_t* experts, const float* probs, const cpu::MoeDims& d, int error_code)
      : num_experts_(d.num_experts),
        stats_(2 * d.num_experts),
        order_(d.entries()),
        pos_of_(d.entries()),
        host_stats_(size_t(2 * d.num_experts)),
        begin_(size_t(d.num_experts + 1), 0) {
    const int64_t entries = d.entries();
    const unsigned blocks = unsigned(std::min<int64_t>(num_experts_, 65535));
    expert_stats_kernel<<<blocks, kThreads, 0, stream()>>>(experts, probs, d.n, num_experts_, d.topk, stats_.get(),
                                                          input_error_record(), error_code);
    check_launch("expert_stats_kernel");
    // The one device->host copy of a call: the counts size the per-expert GEMMs launched from the host. It waits
    // for the device, so a bad expert id throws here, before any kernel indexes with it.
    copy(host_stats_.data(), false, stats_.get(), true, sizeof(double) * host_stats_.size());
    for (int64_t e = 0; e < num_experts_; ++e) begin_[e + 1] = begin_[e] + int64_t(host_stats_[e]);
    if (entries == 0) return;
    int end_bit = 1;  // ids in [0, E) fit in end_bit bits
    while ((int64_t(1) << end_bit) < num_experts_) ++end_bit;
    DeviceBuffer<int32_t> slots(entries);
    DeviceBuffer<uint32_t> sorted_ids(entries);
    iota_kernel<<<grid_for(entries, kThreads), kThreads, 0, stream()>>>(slots.get(), entries);
    check_launch("iota_kernel");
    const auto* ids = reinterpret_cast<const uint32_t*>(experts);  // non-negative, checked above
    size_t temp_bytes = 0;
    HSA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, ids, sorted_ids.get(), slots.get(),
                                                   order_.get(), int(entries), 0, end_bit, stream()));
    DeviceBuffer<char> temp(static_cast<int64_t>(temp_bytes));
    HSA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.get(), temp_bytes, ids, sorted_ids.get(), slots.get(),
                                                   order_.get(), int(entries), 0, end_bit, stream()));
    invert_kernel<<<grid_for(entries, kThreads), kThreads, 0, stream()>>>(order_.get(), pos_of_.get(), entries);
    check_launch("invert_kernel");
  }

  const int32_t* order() const { return order_.get(); }    // [entries]: the slot t * k + j of each entry
  const int32_t* pos_of() const { return pos_of_.get(); }  // [entries]: the entry of each slot
  const double* device_counts() const { return stats_.get(); }  // [E] on the device
  int64_t begin(int64_t e) const { return begin_[e]; }
  int64_t count(int64_t e) const { return begin_[e + 1] - begin_[e]; }

  // E * sum_e f_e P_e from the counts and probability sums (needs probs at construction).
  double balance_loss(const cpu::MoeDims& d) const {
    if (d.n == 0) return 0.0;
    double loss = 0.0;
    for (int64_t e = 0; e < num_experts_; ++e)
      loss += host_stats_[e] / double(d.entries()) * host_stats_[num_experts_ + e] / double(d.n);
    return double(num_experts_) * loss;
  }

 private:
  int64_t num_experts_;
  DeviceBuffer<double> stats_;  // [2E]: counts, then probability sums
  DeviceBuffer<int32_t> order_, pos_of_;
  std::vector<double> host_stats_;
  std::vector<int64_t> begin_;  // [E + 1] first entry of each expert
};

// One expert's GEMM operands. Routed experts read their block of gathered rows; shared experts read x itself.
// Their results go to rows [row0, row0 + rows) of the per-entry buffers [N*k + NS*N, dm] and elements
// [act0, act0 + rows * ffn) of the activation buffers.
template <class T> struct ExpertJob {
  const T* w_gate;
  const T* w_up;
  const T* w_down;
  T* d_gate;  // gradients: backward only
  T* d_up;
  T* d_down;
  int64_t ffn, rows, row0, act0;
  bool shared;
};

template <class T>
std::vector<ExpertJob<T>> expert_jobs(const cpu::MoeDims& d, const Routing& r, const MoeDeviceWeights<T>& w,
                                      const MoeDeviceGrads<T>* dw) {
  std::vector<ExpertJob<T>> jobs;
  const int64_t stride = d.ffn * d.dm;
  for (int64_t e = 0; e < d.num_experts; ++e) {
    ExpertJob<T> j{w.w_gate + e * stride, w.w_up + e * stride, w.w_down + e * stride, nullptr, nullptr, nullptr,
                   d.ffn, r.count(e), r.begin(e), r.begin(e) * d.ffn, false};
    if (dw) {
      j.d_gate = dw->w_gate + e * stride;
      j.d_up = dw->w_up + e * stride;
      j.d_down = dw->w_down + e * stride;
    }
    jobs.push_back(j);
  }
  const int64_t shared_stride = d.ffn_shared * d.dm;
  for (int64_t s = 0; s < d.num_shared; ++s) {
    ExpertJob<T> j{w.shared_gate + s * shared_stride, w.shared_up + s * shared_stride,
                   w.shared_down + s * shared_stride, nullptr, nullptr, nullptr, d.ffn_shared, d.n,
                   d.entries() + s * d.n, d.entries() * d.ffn + s * d.n * d.ffn_shared, true};
    if (dw) {
      j.d_gate = dw->shared_gate + s * shared_stride;
      j.d_up = dw->shared_up + s * shared_stride;
      j.d_down = dw->shared_down + s * shared_stride;
    }
    jobs.push_back(j);
  }
  return jobs;
}

void check_sizes(const cpu::MoeDims& d) {
  const int64_t rows = d.entries() + d.num_shared * d.n;
  HSA_CHECK(rows < INT32_MAX, "moe cuda: N*k + NS*N = {} entry rows (N = {}, k = {}, NS = {}) exceed 2^31 - 1", rows,
            d.n, d.topk, d.num_shared);
}

}  // namespace

template <class T>
double moe_forward(const T* x, const MoeDeviceWeights<T>& w, const cpu::MoeDims& d, T* y, float* probs,
                   int32_t* experts, float* gates, T* act_gate, T* act_up) {
  // The router's own ids are always in range; the statistics kernel checks them anyway.
  static const int code = input_error_code("moe_forward: the router picked an expert outside [0, E)");
  check_sizes(d);
  const int64_t n = d.n, dm = d.dm, ne = d.num_experts, k = d.topk, entries = d.entries();
  {
    std::unique_ptr<DeviceBuffer<float>> x32, router32;
    gemm<float>(false, true, n, ne, dm, 1.f, as_f32(x, n * dm, x32), dm, as_f32(w.router, ne * dm, router32), dm,
                0.f, probs, ne);  // logits
  }
  router_forward_kernel<<<warp_grid(n), kThreads, 0, stream()>>>(probs, experts, gates, n, ne, k);
  check_launch("router_forward_kernel");
  Routing r(experts, probs, d, code);

  DeviceBuffer<T> xg(entries * dm), h(d.act_elements()), out((entries + d.num_shared * n) * dm);
  gather_rows_kernel<<<grid_for(entries * dm, kThreads), kThreads, 0, stream()>>>(dev(x), r.order(), entries, k, dm,
                                                                                 dev(xg.get()));
  check_launch("gather_rows_kernel");
  const std::vector<ExpertJob<T>> jobs = expert_jobs<T>(d, r, w, nullptr);
  for (const ExpertJob<T>& j : jobs) {
    const T* in = j.shared ? x : xg.get() + j.row0 * dm;
    gemm<T>(false, true, j.rows, j.ffn, dm, 1.f, in, dm, j.w_gate, dm, 0.f, act_gate + j.act0, j.ffn);
    gemm<T>(false, true, j.rows, j.ffn, dm, 1.f, in, dm, j.w_up, dm, 0.f, act_up + j.act0, j.ffn);
  }
  swiglu_forward<T>(act_gate, act_up, h.get(), d.act_elements());
  for (const ExpertJob<T>& j : jobs)
    gemm<T>(false, true, j.rows, dm, j.ffn, 1.f, h.get() + j.act0, j.ffn, j.w_down, j.ffn, 0.f,
            out.get() + j.row0 * dm, dm);
  combine_rows_kernel<<<grid_for(n * dm, kThreads), kThreads, 0, stream()>>>(
      nullptr, gates, r.pos_of(), dev(out.get()), n, k, d.num_shared, dm, dev(y));
  check_launch("combine_rows_kernel");
  return r.balance_loss(d);
}

template <class T>
void moe_backward(const T* dy, double aux_scale, const T* x, const MoeDeviceWeights<T>& w, const cpu::MoeDims& d,
                  const float* probs, const int32_t* experts, const float* gates, const T* act_gate, const T* act_up,
                  T* dx, const MoeDeviceGrads<T>& dw) {
  static const int code = input_error_code("moe_backward: 'fwd.experts' holds an expert id outside [0, E)");
  check_sizes(d);
  const int64_t n = d.n, dm = d.dm, ne = d.num_experts, k = d.topk, entries = d.entries();
  const int64_t act = d.act_elements();
  Routing r(experts, nullptr, d, code);

  // Per entry row: x and dy gathered; in the activation layout: h (then gate * h), dh (then gate * dh), and the
  // gradients at the two pre-activations.
  DeviceBuffer<T> xg(entries * dm), dyg(entries * dm), h(act), dh(act), d_act_gate(act), d_act_up(act);
  DeviceBuffer<T> dx_rows((entries + d.num_shared * n) * dm);
  DeviceBuffer<float> dgates(entries);
  const unsigned gather_blocks = grid_for(entries * dm, kThreads);
  gather_rows_kernel<<<gather_blocks, kThreads, 0, stream()>>>(dev(x), r.order(), entries, k, dm, dev(xg.get()));
  check_launch("gather_rows_kernel");
  gather_rows_kernel<<<gather_blocks, kThreads, 0, stream()>>>(dev(dy), r.order(), entries, k, dm, dev(dyg.get()));
  check_launch("gather_rows_kernel");
  const std::vector<ExpertJob<T>> jobs = expert_jobs<T>(d, r, w, &dw);
  auto in = [&](const ExpertJob<T>& j) { return j.shared ? x : xg.get() + j.row0 * dm; };
  auto dy_in = [&](const ExpertJob<T>& j) { return j.shared ? dy : dyg.get() + j.row0 * dm; };

  for (const ExpertJob<T>& j : jobs)  // dh = dy w_down: d(out) is dy itself, the gate comes in below
    gemm<T>(false, false, j.rows, j.ffn, dm, 1.f, dy_in(j), dm, j.w_down, j.ffn, 0.f, dh.get() + j.act0, j.ffn);
  swiglu_forward<T>(act_gate, act_up, h.get(), act);
  gate_entries_kernel<<<warp_grid(entries), kThreads, 0, stream()>>>(r.order(), gates, entries, d.ffn,
                                                                      dev(dh.get()), dev(h.get()), dgates.get());
  check_launch("gate_entries_kernel");
  swiglu_backward<T>(dh.get(), act_gate, act_up, d_act_gate.get(), d_act_up.get(), act);
  // Weight gradients over each expert's rows (k = rows = 0 writes zeros), and each entry's dx row.
  for (const ExpertJob<T>& j : jobs) {
    const T* dg = d_act_gate.get() + j.act0;
    const T* du = d_act_up.get() + j.act0;
    T* dxr = dx_rows.get() + j.row0 * dm;
    gemm<T>(true, false, j.ffn, dm, j.rows, 1.f, dg, j.ffn, in(j), dm, 0.f, j.d_gate, dm);
    gemm<T>(true, false, j.ffn, dm, j.rows, 1.f, du, j.ffn, in(j), dm, 0.f, j.d_up, dm);
    gemm<T>(true, false, dm, j.ffn, j.rows, 1.f, dy_in(j), dm, h.get() + j.act0, j.ffn, 0.f, j.d_down, j.ffn);
    gemm<T>(false, false, j.rows, dm, j.ffn, 1.f, dg, j.ffn, j.w_gate, dm, 0.f, dxr, dm);
    gemm<T>(false, false, j.rows, dm, j.ffn, 1.f, du, j.ffn, j.w_up, dm, 1.f, dxr, dm);
  }

  // Router, in f32 like the forward: dlogits, then drouter = dlogits^T x and dx += dlogits router.
  DeviceBuffer<float> dlogits(n * ne), dx_router(n * dm);
  const double aux_per_count = n > 0 ? aux_scale * double(ne) / double(entries) / double(n) : 0.0;
  router_backward_kernel<<<warp_grid(n), kThreads, 0, stream()>>>(probs, experts, gates, dgates.get(),
                                                                   r.device_counts(), aux_per_count, n, ne, k,
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
  combine_rows_kernel<<<grid_for(n * dm, kThreads), kThreads, 0, stream()>>>(
      dx_router.get(), nullptr, r.pos_of(), dev(dx_rows.get()), n, k, d.num_shared, dm, dev(dx));
  check_launch("combine_rows_kernel");
}

#define HSA_MOE_INSTANTIATE(T)                                                                                        \
  template double moe_forward<T>(const T*, const MoeDeviceWeights<T>&, const cpu::MoeDims&, T*, float*, int32_t*,     \
                                 float*, T*, T*);                                                                     \
  template void moe_backward<T>(const T*, double, const T*, const MoeDeviceWeights<T>&, const cpu::MoeDims&,          \
                                const float*, const int32_t*, const float*, const T*, const T*, T*,                   \
                                const MoeDeviceGrads<T>&);
HSA_MOE_INSTANTIATE(float)
HSA_MOE_INSTANTIATE(bf16)
#undef HSA_MOE_INSTANTIATE

}  // namespace hsa::cuda

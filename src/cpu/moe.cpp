#include "cpu/moe.h"

#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/swiglu.h"

#include <hsa/error.h>

#include <algorithm>
#include <cmath>
#include <memory>

namespace hsa::cpu {

namespace {

// A tile is up to kTileRows consecutive entries of one expert. Tiles, not experts, are the parallel unit: with
// E = 8 experts and 16 threads a per-expert split would leave half the cores idle, and an unlucky expert that
// gets most tokens would serialise the step. The size is fixed (not derived from the thread count) so the
// GEMM shapes, hence the rounding, do not depend on how many threads run.
constexpr int64_t kTileRows = 128;
// Weight-gradient GEMMs are split into blocks of output columns, which are independent (no reduction).
constexpr int64_t kWeightCols = 64;

struct Tile {
  int64_t expert, begin, end;

  int64_t rows() const { return end - begin; }
  // Offset of the tile's first row in the activation layout, whose rows have the expert's ffn width.
  int64_t act_begin(const MoeRouting& r, int64_t ffn) const {
    return r.act_begin[expert] + (begin - r.begin[expert]) * ffn;
  }
};

std::vector<Tile> make_tiles(const MoeRouting& r) {
  std::vector<Tile> tiles;
  for (int64_t e = 0; e < r.num_experts(); ++e)
    for (int64_t b = r.begin[e]; b < r.begin[e + 1]; b += kTileRows)
      tiles.push_back({e, b, std::min(b + kTileRows, r.begin[e + 1])});
  return tiles;
}

template <class T>
int64_t max_ffn(const std::vector<MoeExpert<T>>& experts) {
  int64_t f = 0;
  for (const auto& ex : experts) f = std::max(f, ex.ffn);
  return f;
}

// Gate of entry i: its renormalised router weight, or 1 for a shared expert.
template <class T>
T entry_gate(const MoeRouting& r, const T* gates, int64_t i) {
  int64_t p = r.pos[i];
  return p < r.topk ? gates[int64_t(r.token[i]) * r.topk + p] : T(1);
}

// Scratch that is fully written before it is read: no zero fill (std::vector would memset tens of MB per call).
template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::unique_ptr<T[]>(new T[size_t(n)]);
}

template <class T>
void gather_rows(const T* src, const int32_t* rows, int64_t count, int64_t dm, T* dst) {
  for (int64_t i = 0; i < count; ++i) std::copy_n(src + int64_t(rows[i]) * dm, dm, dst + i * dm);
}

// out[t] = sum_j slots[t, j] for j in order: a fixed summation order, whatever thread produced each slot.
template <class T>
void reduce_slots(const T* slots, int64_t n, int64_t per_token, int64_t dm, T* out) {
#pragma omp parallel for schedule(static) if (worth_parallel(n * per_token * dm))
  for (int64_t t = 0; t < n; ++t) {
    T* o = out + t * dm;
    const T* s = slots + t * per_token * dm;
    std::copy_n(s, dm, o);
    for (int64_t j = 1; j < per_token; ++j)
      for (int64_t c = 0; c < dm; ++c) o[c] += s[j * dm + c];
  }
}

}  // namespace

MoeRouting moe_build_routing(const int32_t* experts, int64_t n, int64_t num_routed, int64_t topk, int64_t num_shared,
                             int64_t ffn_routed, int64_t ffn_shared) {
  MoeRouting r;
  r.tokens = n;
  r.topk = topk;
  r.num_routed = num_routed;
  r.num_shared = num_shared;
  int64_t ne = num_routed + num_shared;
  std::vector<int64_t> count(ne, 0);
  for (int64_t i = 0; i < n * topk; ++i) {
    int32_t e = experts[i];
    HSA_CHECK(e >= 0 && e < num_routed, "moe: token {} routes to expert {}, outside [0, {})", i / topk, e, num_routed);
    ++count[e];
  }
  for (int64_t s = 0; s < num_shared; ++s) count[num_routed + s] = n;
  r.begin.assign(ne + 1, 0);
  r.act_begin.assign(ne + 1, 0);
  for (int64_t e = 0; e < ne; ++e) {
    r.begin[e + 1] = r.begin[e] + count[e];
    r.act_begin[e + 1] = r.act_begin[e] + count[e] * (e < num_routed ? ffn_routed : ffn_shared);
  }
  r.token.resize(r.begin[ne]);
  r.pos.resize(r.begin[ne]);
  // Counting sort by expert; scanning tokens in order keeps each expert's tokens ascending.
  std::vector<int64_t> fill(r.begin.begin(), r.begin.end() - 1);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < topk; ++j) {
      int64_t i = fill[experts[t * topk + j]]++;
      r.token[i] = int32_t(t);
      r.pos[i] = int32_t(j);
    }
  for (int64_t s = 0; s < num_shared; ++s)
    for (int64_t t = 0; t < n; ++t) {
      int64_t i = r.begin[num_routed + s] + t;
      r.token[i] = int32_t(t);
      r.pos[i] = int32_t(topk + s);
    }
  return r;
}

template <class T>
void moe_router_forward(const T* x, const T* router, T* probs, int32_t* experts, T* gates, int64_t n, int64_t dm,
                        int64_t num_experts, int64_t topk) {
  // Logits into probs first, then softmax in place row by row.
  gemm<T>(false, true, n, num_experts, dm, T(1), x, dm, router, dm, T(0), probs, num_experts);
  BlasSerialScope serial_blas;  // the GEMMs below run one per OpenMP thread
#pragma omp parallel if (worth_parallel(n * num_experts * dm))
  {
    std::vector<char> taken(num_experts);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < n; ++t) {
      T* p = probs + t * num_experts;
      int32_t* chosen = experts + t * topk;
      // Top-k on the logits (same order as the probs, but exp can merge nearly equal logits). Strict '>' keeps
      // the lower index on ties. k passes of argmax: k and E are small (k <= 8, E <= 256).
      std::fill(taken.begin(), taken.end(), 0);
      for (int64_t j = 0; j < topk; ++j) {
        int64_t best = -1;
        for (int64_t e = 0; e < num_experts; ++e)
          if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
        taken[best] = 1;
        chosen[j] = int32_t(best);
      }
      T mx = p[chosen[0]];
      T sum = 0;
      for (int64_t e = 0; e < num_experts; ++e) {
        p[e] = std::exp(p[e] - mx);
        sum += p[e];
      }
      for (int64_t e = 0; e < num_experts; ++e) p[e] /= sum;
      T chosen_sum = 0;
      for (int64_t j = 0; j < topk; ++j) chosen_sum += p[chosen[j]];
      for (int64_t j = 0; j < topk; ++j) gates[t * topk + j] = p[chosen[j]] / chosen_sum;
    }
  }
}

template <class T>
double moe_load_balance_loss(const T* probs, const int32_t* experts, int64_t n, int64_t num_experts, int64_t topk) {
  if (n == 0) return 0;
  std::vector<double> count(num_experts, 0), mean_prob(num_experts, 0);
  for (int64_t i = 0; i < n * topk; ++i) count[experts[i]] += 1;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t e = 0; e < num_experts; ++e) mean_prob[e] += probs[t * num_experts + e];
  double loss = 0;
  for (int64_t e = 0; e < num_experts; ++e) loss += count[e] / double(n * topk) * mean_prob[e] / double(n);
  return double(num_experts) * loss;
}

template <class T>
void moe_experts_forward(const T* x, const std::vector<MoeExpert<T>>& experts, const MoeRouting& r, const T* gates,
                         T* act_gate, T* act_up, T* y, int64_t dm) {
  const int64_t per_token = r.slots_per_token();
  auto slots = scratch<T>(r.tokens * per_token * dm);
  std::vector<Tile> tiles = make_tiles(r);
  const int64_t f_max = max_ffn(experts);
  BlasSerialScope serial_blas;  // the GEMMs below run one per OpenMP thread
#pragma omp parallel if (worth_parallel(r.entries() * dm))
  {
    auto xg = scratch<T>(kTileRows * dm), h = scratch<T>(kTileRows * f_max), out = scratch<T>(kTileRows * dm);
#pragma omp for schedule(dynamic, 1)
    for (size_t ti = 0; ti < tiles.size(); ++ti) {
      const Tile& tile = tiles[ti];
      const MoeExpert<T>& ex = experts[tile.expert];
      const int64_t rows = tile.rows(), f = ex.ffn, act = tile.act_begin(r, f);
      T* g = act_gate + act;
      T* u = act_up + act;
      gather_rows(x, r.token.data() + tile.begin, rows, dm, xg.get());
      gemm<T>(false, true, rows, f, dm, T(1), xg.get(), dm, ex.w_gate, dm, T(0), g, f);
      gemm<T>(false, true, rows, f, dm, T(1), xg.get(), dm, ex.w_up, dm, T(0), u, f);
      swiglu_forward<T>(g, u, h.get(), rows * f);
      gemm<T>(false, true, rows, dm, f, T(1), h.get(), f, ex.w_down, f, T(0), out.get(), dm);
      for (int64_t i = 0; i < rows; ++i) {
        int64_t e = tile.begin + i;
        T gate = entry_gate(r, gates, e);
        T* dst = slots.get() + (int64_t(r.token[e]) * per_token + r.pos[e]) * dm;
        for (int64_t c = 0; c < dm; ++c) dst[c] = gate * out[i * dm + c];
      }
    }
  }
  reduce_slots(slots.get(), r.tokens, per_token, dm, y);
}

template <class T>
void moe_experts_backward(const T* dy, const T* x, const std::vector<MoeExpert<T>>& experts, const MoeRouting& r,
                          const T* gates, const T* act_gate, const T* act_up, T* dgates, T* dx, int64_t dm) {
  const int64_t per_token = r.slots_per_token(), entries = r.entries();
  // Per entry, kept for the weight gradients: the gathered x and dy rows [entries, dm], and in the activation
  // layout the gated hidden gate * h and dG, dU (the gradients at the two pre-activations).
  auto xg = scratch<T>(entries * dm), dyg = scratch<T>(entries * dm);
  auto hg = scratch<T>(r.act_elements()), dg = scratch<T>(r.act_elements()), du = scratch<T>(r.act_elements());
  auto slots = scratch<T>(r.tokens * per_token * dm);
  std::vector<Tile> tiles = make_tiles(r);
  const int64_t f_max = max_ffn(experts);
  // Weight gradients: d_gate[e] = dG_e^T X_e [F, dm], d_up[e] = dU_e^T X_e, d_down[e] = dY_e^T (gate * H_e)
  // [dm, F], summed over the expert's entries by the GEMM itself. Split by output column blocks, so the tasks
  // write disjoint memory and need no reduction.
  struct Task {
    int64_t expert, kind, col;
  };
  std::vector<Task> tasks;
  for (int64_t e = 0; e < r.num_experts(); ++e) {
    for (int64_t c = 0; c < dm; c += kWeightCols) tasks.push_back({e, 0, c}), tasks.push_back({e, 1, c});
    for (int64_t c = 0; c < experts[e].ffn; c += kWeightCols) tasks.push_back({e, 2, c});
  }
  // Largest experts first (a shared expert has all N rows): the dynamic schedule then ends on small tasks
  // instead of one thread finishing a big one while the others wait.
  std::stable_sort(tasks.begin(), tasks.end(), [&](const Task& a, const Task& b) {
    return r.begin[a.expert + 1] - r.begin[a.expert] > r.begin[b.expert + 1] - r.begin[b.expert];
  });
  BlasSerialScope serial_blas;  // the GEMMs below run one per OpenMP thread
#pragma omp parallel if (worth_parallel(r.entries() * dm))
  {
    auto dh = scratch<T>(kTileRows * f_max), dxe = scratch<T>(kTileRows * dm);
#pragma omp for schedule(dynamic, 1)
    for (size_t ti = 0; ti < tiles.size(); ++ti) {
      const Tile& tile = tiles[ti];
      const MoeExpert<T>& ex = experts[tile.expert];
      const int64_t rows = tile.rows(), f = ex.ffn, act = tile.act_begin(r, f);
      T* xt = xg.get() + tile.begin * dm;
      T* dyt = dyg.get() + tile.begin * dm;
      gather_rows(x, r.token.data() + tile.begin, rows, dm, xt);
      gather_rows(dy, r.token.data() + tile.begin, rows, dm, dyt);
      // d(out) = dy (ungated): dh = dy w_down, then the gate scales it. d(gate) = <dy, out> = <dy w_down, h>.
      gemm<T>(false, false, rows, f, dm, T(1), dyt, dm, ex.w_down, f, T(0), dh.get(), f);
      T* h = hg.get() + act;
      swiglu_forward<T>(act_gate + act, act_up + act, h, rows * f);
      for (int64_t i = 0; i < rows; ++i) {
        int64_t e = tile.begin + i;
        if (r.pos[e] >= r.topk) continue;  // shared expert: gate 1, no gate gradient
        T gate = entry_gate(r, gates, e);
        T* dhi = dh.get() + i * f;
        T* hi = h + i * f;
        T d = 0;
        for (int64_t c = 0; c < f; ++c) {
          d += dhi[c] * hi[c];
          dhi[c] *= gate;
          hi[c] *= gate;
        }
        dgates[int64_t(r.token[e]) * r.topk + r.pos[e]] = d;
      }
      swiglu_backward<T>(dh.get(), act_gate + act, act_up + act, dg.get() + act, du.get() + act, rows * f);
      gemm<T>(false, false, rows, dm, f, T(1), dg.get() + act, f, ex.w_gate, dm, T(0), dxe.get(), dm);
      gemm<T>(false, false, rows, dm, f, T(1), du.get() + act, f, ex.w_up, dm, T(1), dxe.get(), dm);
      for (int64_t i = 0; i < rows; ++i) {
        int64_t e = tile.begin + i;
        std::copy_n(dxe.get() + i * dm, dm, slots.get() + (int64_t(r.token[e]) * per_token + r.pos[e]) * dm);
      }
    }
    // The implicit barrier above: every tile's dG, dU, gate * H are written before the weight tasks read them.
#pragma omp for schedule(dynamic, 1)
    for (size_t k = 0; k < tasks.size(); ++k) {
      const Task& task = tasks[k];
      const MoeExpert<T>& ex = experts[task.expert];
      const int64_t f = ex.ffn, b = r.begin[task.expert], rows = r.begin[task.expert + 1] - b;
      const int64_t act = r.act_begin[task.expert];
      const int64_t out_rows = task.kind == 2 ? dm : f, out_cols = task.kind == 2 ? f : dm;
      const int64_t width = std::min(kWeightCols, out_cols - task.col);
      T* dst = (task.kind == 0 ? ex.d_gate : task.kind == 1 ? ex.d_up : ex.d_down) + task.col;
      if (rows == 0) {  // an expert no token chose: zero gradient (BLAS with k = 0 is not relied upon)
        for (int64_t i = 0; i < out_rows; ++i) std::fill_n(dst + i * out_cols, width, T(0));
        continue;
      }
      if (task.kind == 2)
        gemm<T>(true, false, dm, width, rows, T(1), dyg.get() + b * dm, dm, hg.get() + act + task.col, f, T(0), dst,
                f);
      else
        gemm<T>(true, false, f, width, rows, T(1), (task.kind == 0 ? dg : du).get() + act, f,
                xg.get() + b * dm + task.col, dm, T(0), dst, dm);
    }
  }
  reduce_slots(slots.get(), r.tokens, per_token, dm, dx);
}

template <class T>
void moe_router_backward(const T* x, const T* router, const T* probs, const int32_t* experts, const T* gates,
                         const T* dgates, double aux_scale, T* dx, T* drouter, int64_t n, int64_t dm,
                         int64_t num_experts, int64_t topk) {
  if (n == 0) {  // BLAS with k = 0 is not relied upon to write beta * C
    std::fill_n(drouter, num_experts * dm, T(0));
    return;
  }
  // aux = coef * E * sum_e f_e * mean_t p[t, e] with f_e constant: d aux / d p[t, e] = coef * E * f_e / N.
  std::vector<T> daux_dp(num_experts, T(0));
  std::vector<double> count(num_experts, 0);
  for (int64_t i = 0; i < n * topk; ++i) count[experts[i]] += 1;
  for (int64_t e = 0; e < num_experts; ++e)
    daux_dp[e] = T(aux_scale * double(num_experts) * count[e] / double(n * topk) / double(n));
  std::vector<T> dlogits(size_t(n * num_experts));
  BlasSerialScope serial_blas;  // the GEMMs below run one per OpenMP thread
#pragma omp parallel if (worth_parallel(n * num_experts * dm))
  {
    std::vector<T> dp(num_experts);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < n; ++t) {
      const T* p = probs + t * num_experts;
      const int32_t* chosen = experts + t * topk;
      const T* g = gates + t * topk;
      const T* dg = dgates + t * topk;
      std::copy(daux_dp.begin(), daux_dp.end(), dp.begin());
      // gate_j = p_j / S over the chosen: d p_m += (dgate_m - sum_j dgate_j gate_j) / S.
      T chosen_sum = 0, dg_dot_g = 0;
      for (int64_t j = 0; j < topk; ++j) {
        chosen_sum += p[chosen[j]];
        dg_dot_g += dg[j] * g[j];
      }
      for (int64_t j = 0; j < topk; ++j) dp[chosen[j]] += (dg[j] - dg_dot_g) / chosen_sum;
      // Softmax: dlogit = p * (dp - <p, dp>).
      T p_dot_dp = 0;
      for (int64_t e = 0; e < num_experts; ++e) p_dot_dp += p[e] * dp[e];
      T* dl = dlogits.data() + t * num_experts;
      for (int64_t e = 0; e < num_experts; ++e) dl[e] = p[e] * (dp[e] - p_dot_dp);
    }
  }
  gemm<T>(true, false, num_experts, dm, n, T(1), dlogits.data(), num_experts, x, dm, T(0), drouter, dm);
  gemm<T>(false, false, n, dm, num_experts, T(1), dlogits.data(), num_experts, router, dm, T(1), dx, dm);
}

#define HSA_MOE_INSTANTIATE(T)                                                                                       \
  template void moe_router_forward<T>(const T*, const T*, T*, int32_t*, T*, int64_t, int64_t, int64_t, int64_t);     \
  template double moe_load_balance_loss<T>(const T*, const int32_t*, int64_t, int64_t, int64_t);                     \
  template void moe_experts_forward<T>(const T*, const std::vector<MoeExpert<T>>&, const MoeRouting&, const T*, T*,  \
                                       T*, T*, int64_t);                                                             \
  template void moe_experts_backward<T>(const T*, const T*, const std::vector<MoeExpert<T>>&, const MoeRouting&,     \
                                        const T*, const T*, const T*, T*, T*, int64_t);                              \
  template void moe_router_backward<T>(const T*, const T*, const T*, const int32_t*, const T*, const T*, double, T*, \
                                       T*, int64_t, int64_t, int64_t, int64_t);
HSA_MOE_INSTANTIATE(float)
HSA_MOE_INSTANTIATE(double)
#undef HSA_MOE_INSTANTIATE

}  // namespace hsa::cpu

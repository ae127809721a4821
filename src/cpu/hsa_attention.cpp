#include "cpu/hsa_attention.h"

#include "cpu/fast_math.h"
#include "cpu/gemm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace hsa::cpu {

namespace {

// The (token, slot) pairs of every (batch, KV head, chunk) group, in token order.
struct ChunkGroups {
  std::vector<int64_t> start;   // [B * H * C + 1] offsets into pairs
  std::vector<int64_t> pairs;   // t * K + i
  std::vector<int64_t> active;  // groups with at least one pair, largest first (load balance)
};

ChunkGroups group_by_chunk(const int32_t* indices, const HsaShape& s) {
  ChunkGroups g;
  int64_t groups = s.B * s.H * s.C;
  g.start.assign(groups + 1, 0);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.L; ++t)
      for (int64_t r = 0; r < s.H; ++r)
        for (int64_t i = 0; i < s.K; ++i) {
          int32_t c = indices[((b * s.L + t) * s.H + r) * s.K + i];
          if (c >= 0) ++g.start[(b * s.H + r) * s.C + c + 1];
        }
  for (int64_t k = 0; k < groups; ++k) g.start[k + 1] += g.start[k];
  g.pairs.resize(g.start[groups]);
  std::vector<int64_t> fill(g.start.begin(), g.start.end() - 1);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.L; ++t)
      for (int64_t r = 0; r < s.H; ++r)
        for (int64_t i = 0; i < s.K; ++i) {
          int32_t c = indices[((b * s.L + t) * s.H + r) * s.K + i];
          if (c >= 0) g.pairs[fill[(b * s.H + r) * s.C + c]++] = t * s.K + i;
        }
  for (int64_t k = 0; k < groups; ++k)
    if (g.start[k + 1] > g.start[k]) g.active.push_back(k);
  std::stable_sort(g.active.begin(), g.active.end(), [&](int64_t a, int64_t b) {
    return g.start[a + 1] - g.start[a] > g.start[b + 1] - g.start[b];
  });
  return g;
}

// Everything one work item needs to address its rows: row = p * G + g for its p-th pair and query head g.
struct Item {
  int64_t b, r, c, first, n;
  const int64_t* pairs;
};

Item make_item(const ChunkGroups& g, const HsaShape& s, int64_t group) {
  int64_t b = group / (s.H * s.C), r = (group / s.C) % s.H, c = group % s.C;
  return Item{b, r, c, g.start[group], g.start[group + 1] - g.start[group], g.pairs.data() + g.start[group]};
}

int64_t query_row(const HsaShape& s, const Item& it, int64_t t, int64_t g) {  // into [B, L, HQ, D] / D
  return (it.b * s.L + t) * s.HQ + it.r * (s.HQ / s.H) + g;
}
int64_t slot_index(const HsaShape& s, const Item& it, int64_t t, int64_t i) {  // into [B, L, H, K]
  return ((it.b * s.L + t) * s.H + it.r) * s.K + i;
}
int64_t chunk_offset(const HsaShape& s, const Item& it) {  // row j of the chunk is at + j * H * D
  return ((it.b * s.C + it.c) * s.S * s.H + it.r) * s.D;
}

template <class T> void gather_queries(const T* q, T* qb, const HsaShape& s, const Item& it) {
  int64_t G = s.HQ / s.H;
  for (int64_t p = 0; p < it.n; ++p) {
    int64_t t = it.pairs[p] / s.K;
    std::copy_n(q + query_row(s, it, t, 0) * s.D, G * s.D, qb + p * G * s.D);
  }
}

// Per-slot scratch [B, L, H, K, G, D] -> per-token sum over slots [B, L, HQ, D], weighted or not.
template <class T>
void reduce_slots(const T* slots, const int32_t* indices, const T* weights, T* out, const HsaShape& s) {
  int64_t G = s.HQ / s.H;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t bt = 0; bt < s.B * s.L; ++bt)
    for (int64_t r = 0; r < s.H; ++r) {
      T* o = out + (bt * s.HQ + r * G) * s.D;
      std::fill(o, o + G * s.D, T(0));
      for (int64_t i = 0; i < s.K; ++i) {
        int64_t slot = (bt * s.H + r) * s.K + i;
        if (indices[slot] < 0) continue;
        T w = weights ? weights[slot] : T(1);
        const T* src = slots + slot * G * s.D;
        for (int64_t e = 0; e < G * s.D; ++e) o[e] += w * src[e];
      }
    }
}

}  // namespace

template <class T>
void hsa_attention_forward(const T* q, const T* mem_k, const T* mem_v, const int32_t* indices, const T* weights,
                           T* out, T* lse, const HsaShape& s) {
  int64_t G = s.HQ / s.H, HD = s.H * s.D;
  ChunkGroups groups = group_by_chunk(indices, s);
  std::vector<T> slots(static_cast<size_t>(s.B * s.L * s.H * s.K * G * s.D));
  std::fill(lse, lse + s.B * s.L * s.HQ * s.K, -std::numeric_limits<T>::infinity());
#pragma omp parallel
  {
    std::vector<T> qb, sb, ob;
#pragma omp for schedule(dynamic, 1)
    for (size_t a = 0; a < groups.active.size(); ++a) {
      Item it = make_item(groups, s, groups.active[a]);
      int64_t rows = it.n * G;
      qb.resize(rows * s.D), sb.resize(rows * s.S), ob.resize(rows * s.D);
      gather_queries(q, qb.data(), s, it);
      const T* kc = mem_k + chunk_offset(s, it);
      const T* vc = mem_v + chunk_offset(s, it);
      gemm<T>(false, true, rows, s.S, s.D, T(s.scale), qb.data(), s.D, kc, HD, T(0), sb.data(), s.S);
      for (int64_t row = 0; row < rows; ++row) {
        T* x = sb.data() + row * s.S;
        T mx = *std::max_element(x, x + s.S), sum = 0;
        for (int64_t j = 0; j < s.S; ++j) sum += x[j] = fast_exp(x[j] - mx);
        T inv = T(1) / sum;
        for (int64_t j = 0; j < s.S; ++j) x[j] *= inv;
        int64_t pair = it.pairs[row / G];
        lse[query_row(s, it, pair / s.K, row % G) * s.K + pair % s.K] = mx + std::log(sum);
      }
      gemm<T>(false, false, rows, s.D, s.S, T(1), sb.data(), s.S, vc, HD, T(0), ob.data(), s.D);
      for (int64_t p = 0; p < it.n; ++p) {
        int64_t t = it.pairs[p] / s.K, i = it.pairs[p] % s.K;
        std::copy_n(ob.data() + p * G * s.D, G * s.D, slots.data() + slot_index(s, it, t, i) * G * s.D);
      }
    }
  }
  reduce_slots(slots.data(), indices, weights, out, s);
}

template <class T>
void hsa_attention_backward(const T* dout, const T* q, const T* mem_k, const T* mem_v, const int32_t* indices,
                            const T* weights, const T* lse, T* dq, T* dmem_k, T* dmem_v, T* dweights,
                            const HsaShape& s) {
  int64_t G = s.HQ / s.H, HD = s.H * s.D;
  ChunkGroups groups = group_by_chunk(indices, s);
  std::vector<T> slots(static_cast<size_t>(s.B * s.L * s.H * s.K * G * s.D));
  std::fill(dmem_k, dmem_k + s.B * s.C * s.S * HD, T(0));
  std::fill(dmem_v, dmem_v + s.B * s.C * s.S * HD, T(0));
  std::fill(dweights, dweights + s.B * s.L * s.H * s.K, T(0));
#pragma omp parallel
  {
    std::vector<T> qb, dob, p, dp, ob, dqb, delta;
#pragma omp for schedule(dynamic, 1)
    for (size_t a = 0; a < groups.active.size(); ++a) {
      Item it = make_item(groups, s, groups.active[a]);
      int64_t rows = it.n * G;
      qb.resize(rows * s.D), dob.resize(rows * s.D), ob.resize(rows * s.D), dqb.resize(rows * s.D);
      p.resize(rows * s.S), dp.resize(rows * s.S), delta.resize(rows);
      gather_queries(q, qb.data(), s, it);
      // The chunk's output receives w * dout.
      for (int64_t pr = 0; pr < it.n; ++pr) {
        int64_t t = it.pairs[pr] / s.K, i = it.pairs[pr] % s.K;
        T w = weights[slot_index(s, it, t, i)];
        const T* src = dout + query_row(s, it, t, 0) * s.D;
        for (int64_t e = 0; e < G * s.D; ++e) dob[pr * G * s.D + e] = w * src[e];
      }
      const T* kc = mem_k + chunk_offset(s, it);
      const T* vc = mem_v + chunk_offset(s, it);
      gemm<T>(false, true, rows, s.S, s.D, T(s.scale), qb.data(), s.D, kc, HD, T(0), p.data(), s.S);
      for (int64_t row = 0; row < rows; ++row) {
        int64_t pair = it.pairs[row / G];
        T l = lse[query_row(s, it, pair / s.K, row % G) * s.K + pair % s.K];
        T* x = p.data() + row * s.S;
        for (int64_t j = 0; j < s.S; ++j) x[j] = fast_exp(x[j] - l);
      }
      gemm<T>(false, false, rows, s.D, s.S, T(1), p.data(), s.S, vc, HD, T(0), ob.data(), s.D);
      for (int64_t row = 0; row < rows; ++row) {
        int64_t pair = it.pairs[row / G];
        int64_t t = pair / s.K, i = pair % s.K;
        const T* o = ob.data() + row * s.D;
        const T* d = dout + query_row(s, it, t, row % G) * s.D;
        T dot = 0, wdot = 0;
        for (int64_t e = 0; e < s.D; ++e) dot += d[e] * o[e], wdot += dob[row * s.D + e] * o[e];
        dweights[slot_index(s, it, t, i)] += dot;  // this item owns the slot; its G rows add in order
        delta[row] = wdot;
      }
      gemm<T>(false, true, rows, s.S, s.D, T(1), dob.data(), s.D, vc, HD, T(0), dp.data(), s.S);
      for (int64_t e = 0; e < rows * s.S; ++e) dp[e] = p[e] * (dp[e] - delta[e / s.S]);
      gemm<T>(false, false, rows, s.D, s.S, T(s.scale), dp.data(), s.S, kc, HD, T(0), dqb.data(), s.D);
      gemm<T>(true, false, s.S, s.D, rows, T(s.scale), dp.data(), s.S, qb.data(), s.D, T(0),
              dmem_k + chunk_offset(s, it), HD);
      gemm<T>(true, false, s.S, s.D, rows, T(1), p.data(), s.S, dob.data(), s.D, T(0), dmem_v + chunk_offset(s, it),
              HD);
      for (int64_t pr = 0; pr < it.n; ++pr) {
        int64_t t = it.pairs[pr] / s.K, i = it.pairs[pr] % s.K;
        std::copy_n(dqb.data() + pr * G * s.D, G * s.D, slots.data() + slot_index(s, it, t, i) * G * s.D);
      }
    }
  }
  reduce_slots(slots.data(), indices, static_cast<const T*>(nullptr), dq, s);
}

template void hsa_attention_forward<float>(const float*, const float*, const float*, const int32_t*, const float*,
                                           float*, float*, const HsaShape&);
template void hsa_attention_forward<double>(const double*, const double*, const double*, const int32_t*,
                                            const double*, double*, double*, const HsaShape&);
template void hsa_attention_backward<float>(const float*, const float*, const float*, const float*, const int32_t*,
                                            const float*, const float*, float*, float*, float*, float*,
                                            const HsaShape&);
template void hsa_attention_backward<double>(const double*, const double*, const double*, const double*,
                                             const int32_t*, const double*, const double*, double*, double*, double*,
                                             double*, const HsaShape&);

}  // namespace hsa::cpu

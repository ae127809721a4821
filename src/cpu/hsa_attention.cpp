#include "cpu/hsa_attention.h"

#include "cpu/fast_math.h"

#include "cpu/gemm.h"
#include "cpu/parallel.h"

#include <hsa/error.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#if defined(__AVX512F__)
// GCC 12's _mm512_reduce_* helpers start from _mm512_undefined_*(), which -Wmaybe-uninitialized reports (a false
// positive inside the header); the warning is judged at the header's own lines, so it is silenced for them only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

namespace hsa::cpu {

namespace {

// Query rows (entries x G) per GEMM tile. Fixed, not derived from the thread count, so the GEMM shapes and hence
// the rounding do not depend on how many threads run. At D = S = 64 a tile's Q, scores and outputs are 32 KB each
// (f32); 128 rows measured best among 64..1024 for the forward and the backward on the dev box (Zen 4): larger tiles
// fall out of the small-matrix GEMM path and out of L1/L2, smaller ones pay per-call overhead.
constexpr int64_t kTileRows = 128;

// The backward's grouping: entries by chunk. Work item (b, r, c) has index (b * H + r) * C + c; its entries are
// [begin[item], begin[item + 1]), tokens ascending. Entry e is token token[e], slot slot[e]. entry_of maps
// (b, t, r, i) (row-major over [B, L, H, K]) back to its entry, -1 for an empty slot. Per-entry buffers laid out in
// entry order let a tile's GEMM write its rows contiguously; entry_of lets the per-token reduction find them.
struct Routing {
  std::vector<int64_t> begin;
  std::vector<int32_t> token, slot;
  std::vector<int64_t> entry_of;
  int64_t entries() const { return begin.back(); }
};

Routing build_routing(const int32_t* indices, const HsaDims& d) {
  const int64_t items = d.batch * d.kv_heads * d.chunks, n = d.batch * d.len * d.kv_heads * d.topk;
  Routing rt;
  rt.begin.assign(items + 1, 0);
  auto item_of = [&](int64_t flat, int32_t c) {
    int64_t r = (flat / d.topk) % d.kv_heads, b = flat / (d.topk * d.kv_heads * d.len);
    return (b * d.kv_heads + r) * d.chunks + c;
  };
  for (int64_t f = 0; f < n; ++f) {
    int32_t c = indices[f];
    HSA_CHECK(c >= -1 && c < d.chunks, "hsa_attention: chunk index {} outside [-1, {})", c, d.chunks);
    if (c < 0) continue;
    ++rt.begin[item_of(f, c) + 1];
  }
  std::partial_sum(rt.begin.begin(), rt.begin.end(), rt.begin.begin());
  rt.token.resize(rt.entries());
  rt.slot.resize(rt.entries());
  rt.entry_of.assign(n, -1);
  // Counting sort; scanning [B, L, H, K] in order keeps each item's tokens ascending.
  std::vector<int64_t> fill(rt.begin.begin(), rt.begin.end() - 1);
  for (int64_t f = 0; f < n; ++f) {
    int32_t c = indices[f];
    if (c < 0) continue;
    int64_t e = fill[item_of(f, c)]++;
    rt.token[e] = int32_t((f / (d.topk * d.kv_heads)) % d.len);
    rt.slot[e] = int32_t(f % d.topk);
    rt.entry_of[f] = e;
  }
  return rt;
}

struct Tile {
  int64_t item, begin, end;  // entries [begin, end) of one work item
};

int64_t tile_entries(const HsaDims& d) { return std::max<int64_t>(1, kTileRows / d.group()); }

// Scratch that is fully written before it is read: no zero fill.
template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::unique_ptr<T[]>(new T[size_t(std::max<int64_t>(n, 1))]);
}

// The per-row softmax work, one row of S scores at a time. The rows are short (S = 64 by default), so a loop that
// the compiler vectorises still pays a scalar horizontal reduction of 16 lanes per row, which cost as much as the
// exps themselves; the AVX-512 versions below reduce with shuffles instead.
//
// Forward: row holds the scaled scores; becomes (w / sum) * exp(row - max). Returns the log-sum-exp.
template <class T>
T softmax_row_forward(T* __restrict row, int64_t n, T w) {
  T mx = row[0];
  for (int64_t j = 1; j < n; ++j) mx = row[j] > mx ? row[j] : mx;
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    T e = fast_exp(row[j] - mx);
    row[j] = e;
    sum += e;
  }
  const T factor = w / sum;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) row[j] *= factor;
  return mx + std::log(sum);
}

// Backward: p holds the scaled scores, dp = dout . v_j. With P = exp(p - lse) and dot = sum_j P_j dp_j (= <dout,
// o_i>, the weight's gradient from this row): p becomes w P (for dV) and dp becomes w P (dp - dot) (the gradient
// at the scaled scores). Returns dot.
template <class T>
T softmax_row_backward(T* __restrict p, T* __restrict dp, int64_t n, T lse, T w) {
  T dot = 0;
#pragma omp simd reduction(+ : dot)
  for (int64_t j = 0; j < n; ++j) {
    T e = fast_exp(p[j] - lse);
    p[j] = e;
    dot += e * dp[j];
  }
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    T wp = w * p[j];
    p[j] = wp;
    dp[j] = wp * (dp[j] - dot);
  }
  return dot;
}

#if defined(__AVX512F__)
inline __m512 exp16(__m512 x) {  // fast_exp on 16 lanes
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  __m512 big = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(12582912.0f));
  __m512 n = _mm512_sub_ps(big, _mm512_set1_ps(12582912.0f));
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_castps_si512(big), _mm512_set1_epi32(127 - 0x4B400000)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

template <>
float softmax_row_forward<float>(float* __restrict row, int64_t n, float w) {
  if (n % 16 != 0) {  // the portable loops for odd chunk sizes
    float mx = row[0];
    for (int64_t j = 1; j < n; ++j) mx = row[j] > mx ? row[j] : mx;
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += row[j] = fast_exp(row[j] - mx);
    for (int64_t j = 0; j < n; ++j) row[j] *= w / sum;
    return mx + std::log(sum);
  }
  __m512 m = _mm512_loadu_ps(row);
  for (int64_t j = 16; j < n; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(row + j));
  const float mx = _mm512_reduce_max_ps(m);
  const __m512 vmx = _mm512_set1_ps(mx);
  __m512 s = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(row + j), vmx));
    _mm512_storeu_ps(row + j, e);
    s = _mm512_add_ps(s, e);
  }
  const float sum = _mm512_reduce_add_ps(s);
  const __m512 f = _mm512_set1_ps(w / sum);
  for (int64_t j = 0; j < n; j += 16) _mm512_storeu_ps(row + j, _mm512_mul_ps(_mm512_loadu_ps(row + j), f));
  return mx + std::log(sum);
}

template <>
float softmax_row_backward<float>(float* __restrict p, float* __restrict dp, int64_t n, float lse, float w) {
  if (n % 16 != 0) {
    float dot = 0;
    for (int64_t j = 0; j < n; ++j) dot += (p[j] = fast_exp(p[j] - lse)) * dp[j];
    for (int64_t j = 0; j < n; ++j) {
      p[j] *= w;
      dp[j] = p[j] * (dp[j] - dot);
    }
    return dot;
  }
  const __m512 vlse = _mm512_set1_ps(lse), vw = _mm512_set1_ps(w);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(p + j), vlse));
    _mm512_storeu_ps(p + j, e);
    acc = _mm512_fmadd_ps(e, _mm512_loadu_ps(dp + j), acc);
  }
  const float dot = _mm512_reduce_add_ps(acc);
  const __m512 vdot = _mm512_set1_ps(dot);
  for (int64_t j = 0; j < n; j += 16) {
    __m512 wp = _mm512_mul_ps(_mm512_loadu_ps(p + j), vw);
    _mm512_storeu_ps(p + j, wp);
    _mm512_storeu_ps(dp + j, _mm512_mul_ps(wp, _mm512_sub_ps(_mm512_loadu_ps(dp + j), vdot)));
  }
  return dot;
}
#endif

// mem [B, C, S, H, D] -> [B, H, C, D, S]: K_c^T (or V_c^T) contiguous per (b, r, c), so that Q K_c^T and
// dout V_c^T are GEMMs with both operands untransposed. OpenBLAS runs those through its small-matrix kernel
// without packing, measured ~25% faster than the transposed-B call at these sizes. Only the (b, r, c) blocks that
// `indices` selects are written (the others are never read): a decode step or a short segment selects a few
// chunks of a memory that may hold millions of tokens, and transposing all of it on every call made the cost of
// a decoded token grow with the context.
template <class T>
std::unique_ptr<T[]> transpose_chunks(const T* mem, const int32_t* indices, const HsaDims& d) {
  const int64_t S = d.chunk_size, H = d.kv_heads, D = d.head_dim, K = d.topk;
  std::vector<uint8_t> selected(size_t(d.batch * H * d.chunks), 0);
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t f = 0; f < d.len * H * K; ++f) {
      const int32_t c = indices[b * d.len * H * K + f];
      if (c >= 0) selected[size_t((b * H + (f / K) % H) * d.chunks + c)] = 1;
    }
  auto out = scratch<T>(d.batch * H * d.chunks * D * S);
#pragma omp parallel for schedule(static) if (worth_parallel(d.batch * H * d.chunks * D * S))
  for (int64_t bc = 0; bc < d.batch * d.chunks; ++bc) {
    const int64_t b = bc / d.chunks, c = bc % d.chunks;
    for (int64_t r = 0; r < H; ++r) {
      if (!selected[size_t((b * H + r) * d.chunks + c)]) continue;
      T* dst = out.get() + ((b * H + r) * d.chunks + c) * D * S;
      for (int64_t j = 0; j < S; ++j) {
        const T* src = mem + ((bc * S + j) * H + r) * D;
        for (int64_t x = 0; x < D; ++x) dst[x * S + j] = src[x];
      }
    }
  }
  return out;
}

// Copies the G query rows (G*D contiguous values) of every entry of a tile into dst [entries*G, D].
template <class T>
void gather_queries(const T* src, const Routing& rt, const Tile& tile, int64_t b, int64_t r, const HsaDims& d,
                    T* dst) {
  const int64_t gd = d.group() * d.head_dim;
  for (int64_t e = tile.begin; e < tile.end; ++e)
    std::copy_n(src + ((b * d.len + rt.token[e]) * d.q_heads + r * d.group()) * d.head_dim, gd,
                dst + (e - tile.begin) * gd);
}

// dst[b, t, r*G .. r*G+G) = sum over the non-empty slots i (in order) of per_entry[entry_of(b, t, r, i)] [G, D];
// zero where all slots are empty. A fixed summation order, whatever thread produced each entry.
template <class T>
void reduce_slots(const T* per_entry, const Routing& rt, const HsaDims& d, T* dst) {
  const int64_t gd = d.group() * d.head_dim, rows = d.batch * d.len * d.kv_heads;
#pragma omp parallel for schedule(static) if (worth_parallel(rows * gd * d.topk))
  for (int64_t row = 0; row < rows; ++row) {
    T* o = dst + row * gd;  // [B, L, H] rows of G*D are exactly [B, L, HQ, D]
    bool first = true;
    for (int64_t i = 0; i < d.topk; ++i) {
      int64_t e = rt.entry_of[row * d.topk + i];
      if (e < 0) continue;
      const T* s = per_entry + e * gd;
      if (first)
        std::copy_n(s, gd, o);
      else
#pragma omp simd
        for (int64_t x = 0; x < gd; ++x) o[x] += s[x];
      first = false;
    }
    if (first) std::fill_n(o, gd, T(0));
  }
}

// Tokens per forward work item: a multiple of 64, at least 256, and enough that an average (block, chunk) pair
// gathers >= 64 query rows when the K selections spread evenly over the C chunks (block * K * G / C >= 64), so
// the GEMMs stay dense when the memory is long. Depends on the shapes only, never on the thread count.
int64_t forward_block_tokens(const HsaDims& d) {
  int64_t want = (64 * d.chunks + d.topk * d.group() - 1) / (d.topk * d.group());
  return std::max<int64_t>(256, (want + 63) / 64 * 64);
}

}  // namespace

template <class T>
void hsa_attention_forward(const T* q, const T* mem_k, const T* mem_v, const int32_t* indices, const T* weights,
                           double scale, const HsaDims& d, T* out, T* lse) {
  // Work item = (b, r, block of tokens), entries grouped by chunk inside it. The item owns its tokens' output
  // rows, so it accumulates w_i * o_i straight into them (in chunk order: deterministic, and independent of the
  // thread count). The alternative, one item per (b, r, chunk), must park every entry's [G, D] result in an
  // [entries, G, D] buffer (64 MB at the benchmark shape, larger than the L3) and reduce it afterwards; measured,
  // that buffer's first-touch faults and DRAM round trip cost more than the GEMMs. Here each block's q rows and
  // output rows stay in L2, and the price is reading a chunk's K_c, V_c once per block that selects it (L3 hits
  // at these sizes).
  const int64_t G = d.group(), D = d.head_dim, S = d.chunk_size, H = d.kv_heads, K = d.topk, HQ = d.q_heads;
  const int64_t block = forward_block_tokens(d), blocks = (d.len + block - 1) / block;
  const int64_t items = d.batch * H * blocks, per_tile = tile_entries(d);
  struct Entry {
    int32_t chunk, token, slot;
  };
  // The op checked the indices; this guards direct callers (an exception cannot leave the parallel region).
  for (int64_t f = 0; f < d.batch * d.len * H * K; ++f)
    HSA_CHECK(indices[f] >= -1 && indices[f] < d.chunks, "hsa_attention: chunk index {} outside [-1, {})",
              indices[f], d.chunks);
  auto kt = transpose_chunks(mem_k, indices, d);
  BlasSerialScope serial_blas;  // the GEMMs below run one per OpenMP thread
#pragma omp parallel if (worth_parallel(d.batch * d.len * d.q_heads * d.topk * d.chunk_size * d.head_dim))
  {
    auto qg = scratch<T>(per_tile * G * D), p = scratch<T>(per_tile * G * S), o = scratch<T>(per_tile * G * D);
    std::vector<Entry> entries;
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t blk = item % blocks, r = (item / blocks) % H, b = item / (blocks * H);
      const int64_t t0 = blk * block, t1 = std::min(d.len, t0 + block);
      entries.clear();
      for (int64_t t = t0; t < t1; ++t) {
        std::fill_n(out + ((b * d.len + t) * HQ + r * G) * D, G * D, T(0));
        std::fill_n(lse + ((b * d.len + t) * HQ + r * G) * K, G * K, -std::numeric_limits<T>::infinity());
        for (int64_t i = 0; i < K; ++i) {
          int32_t c = indices[((b * d.len + t) * H + r) * K + i];
          if (c >= 0) entries.push_back({c, int32_t(t), int32_t(i)});
        }
      }
      // By chunk; pushed in (token, slot) order, which the stable sort keeps within a chunk.
      std::stable_sort(entries.begin(), entries.end(),
                       [](const Entry& a, const Entry& x) { return a.chunk < x.chunk; });
      for (size_t e0 = 0; e0 < entries.size();) {
        const int64_t c = entries[e0].chunk;
        size_t e1 = e0;
        while (e1 < entries.size() && entries[e1].chunk == c && int64_t(e1 - e0) < per_tile) ++e1;
        const int64_t m = int64_t(e1 - e0) * G;
        const T* ktc = kt.get() + ((b * H + r) * d.chunks + c) * D * S;  // [D, S]
        const T* vc = mem_v + ((b * d.chunks + c) * S * H + r) * D;      // [S, D], row stride H*D
        for (size_t e = e0; e < e1; ++e)
          std::copy_n(q + ((b * d.len + entries[e].token) * HQ + r * G) * D, G * D, qg.get() + (e - e0) * G * D);
        gemm<T>(false, false, m, S, D, T(scale), qg.get(), D, ktc, S, T(0), p.get(), S);
        for (int64_t row = 0; row < m; ++row) {
          const Entry& en = entries[e0 + row / G];
          const int64_t t = en.token, i = en.slot, g = row % G;
          // The retrieval weight folds into the normalisation: the GEMM below then yields w_i * o_i directly.
          lse[((b * d.len + t) * HQ + r * G + g) * K + i] =
              softmax_row_forward<T>(p.get() + row * S, S, weights[((b * d.len + t) * H + r) * K + i]);
        }
        gemm<T>(false, false, m, D, S, T(1), p.get(), S, vc, H * D, T(0), o.get(), D);
        for (size_t e = e0; e < e1; ++e) {
          T* dst = out + ((b * d.len + entries[e].token) * HQ + r * G) * D;
          const T* src = o.get() + (e - e0) * G * D;
#pragma omp simd
          for (int64_t x = 0; x < G * D; ++x) dst[x] += src[x];
        }
        e0 = e1;
      }
    }
  }
}

template <class T>
void hsa_attention_backward(const T* dout, const T* q, const T* mem_k, const T* mem_v, const int32_t* indices,
                            const T* weights, const T* lse, double scale, const HsaDims& d, T* dq, T* dmem_k,
                            T* dmem_v, T* dweights) {
  const int64_t G = d.group(), D = d.head_dim, S = d.chunk_size, H = d.kv_heads, K = d.topk;
  const Routing rt = build_routing(indices, d);
  const int64_t items = int64_t(rt.begin.size()) - 1;
  // Per entry: its contribution to dq [G, D], in entry order; summed per token afterwards.
  auto dq_entry = scratch<T>(rt.entries() * G * D);
  std::fill_n(dweights, d.batch * d.len * H * K, T(0));  // empty slots; every entry overwrites its own
  // One work item per chunk, so dmem_k / dmem_v of chunk c have one writer (its tiles run in sequence and
  // accumulate with beta = 1). Largest first: the dynamic schedule then ends on small items.
  std::vector<int64_t> order(items);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return rt.begin[a + 1] - rt.begin[a] > rt.begin[b + 1] - rt.begin[b];
  });
  const int64_t per_tile = tile_entries(d);
  auto kt = transpose_chunks(mem_k, indices, d), vt = transpose_chunks(mem_v, indices, d);
  BlasSerialScope serial_blas;  // the GEMMs below run one per OpenMP thread
#pragma omp parallel if (worth_parallel(d.batch * d.len * d.q_heads * d.topk * d.chunk_size * d.head_dim))
  {
    auto qg = scratch<T>(per_tile * G * D), dog = scratch<T>(per_tile * G * D);
    auto p = scratch<T>(per_tile * G * S), dp = scratch<T>(per_tile * G * S);
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < items; ++k) {
      const int64_t item = order[k];
      const int64_t c = item % d.chunks, r = (item / d.chunks) % H, b = item / (d.chunks * H);
      const int64_t off = ((b * d.chunks + c) * S * H + r) * D;  // [S, D], row stride H*D
      const T* kc = mem_k + off;
      T *dkc = dmem_k + off, *dvc = dmem_v + off;
      if (rt.begin[item] == rt.begin[item + 1]) {  // no token chose this chunk
        for (int64_t j = 0; j < S; ++j) {
          std::fill_n(dkc + j * H * D, D, T(0));
          std::fill_n(dvc + j * H * D, D, T(0));
        }
        continue;
      }
      for (int64_t e0 = rt.begin[item]; e0 < rt.begin[item + 1]; e0 += per_tile) {
        const Tile tile{item, e0, std::min(e0 + per_tile, rt.begin[item + 1])};
        const int64_t m = (tile.end - tile.begin) * G;
        const T beta = e0 == rt.begin[item] ? T(0) : T(1);
        gather_queries(q, rt, tile, b, r, d, qg.get());
        gather_queries(dout, rt, tile, b, r, d, dog.get());
        const T* ktc = kt.get() + item * D * S;  // [D, S]: item = (b * H + r) * C + c is the transposed layout
        const T* vtc = vt.get() + item * D * S;
        gemm<T>(false, false, m, S, D, T(scale), qg.get(), D, ktc, S, T(0), p.get(), S);
        gemm<T>(false, false, m, S, D, T(1), dog.get(), D, vtc, S, T(0), dp.get(), S);  // dP = dout V^T
        for (int64_t e = tile.begin; e < tile.end; ++e) {
          const int64_t t = rt.token[e], i = rt.slot[e], wi = ((b * d.len + t) * H + r) * K + i;
          const T w = weights[wi];
          T dw = 0;
          for (int64_t g = 0; g < G; ++g) {
            const int64_t row = (e - tile.begin) * G + g;
            T* pr = p.get() + row * S;
            T* dpr = dp.get() + row * S;
            dw += softmax_row_backward<T>(pr, dpr, S, lse[((b * d.len + t) * d.q_heads + r * G + g) * K + i], w);
          }
          dweights[wi] = dw;
        }
        gemm<T>(true, false, S, D, m, T(1), p.get(), S, dog.get(), D, beta, dvc, H * D);         // dV += (wP)^T dO
        gemm<T>(true, false, S, D, m, T(scale), dp.get(), S, qg.get(), D, beta, dkc, H * D);     // dK += s dS^T Q
        gemm<T>(false, false, m, D, S, T(scale), dp.get(), S, kc, H * D, T(0), dq_entry.get() + tile.begin * G * D,
                D);  // dQ_i = s dS K
      }
    }
  }
  reduce_slots(dq_entry.get(), rt, d, dq);
}

#define HSA_ATTENTION_INSTANTIATE(T)                                                                                  \
  template void hsa_attention_forward<T>(const T*, const T*, const T*, const int32_t*, const T*, double,              \
                                         const HsaDims&, T*, T*);                                                     \
  template void hsa_attention_backward<T>(const T*, const T*, const T*, const T*, const int32_t*, const T*, const T*, \
                                          double, const HsaDims&, T*, T*, T*, T*);
HSA_ATTENTION_INSTANTIATE(float)
HSA_ATTENTION_INSTANTIATE(double)
#undef HSA_ATTENTION_INSTANTIATE

}  // namespace hsa::cpu

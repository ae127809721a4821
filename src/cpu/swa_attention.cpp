#include "cpu/swa_attention.h"

#include "cpu/gemm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace hsa::cpu {

namespace {

constexpr int64_t kBlock = 64;  // queries per work item

// The rows of one work item: queries [i0, i1) of KV head kvh in batch b, times the G query heads that read it;
// row r = (i - i0) * G + g. Keys [j_lo, j_hi) cover every window in the block.
struct Block {
  int64_t b, kvh, i0, i1, j_lo, j_hi;
  int64_t rows(int64_t G) const { return (i1 - i0) * G; }
  int64_t keys() const { return j_hi - j_lo; }
};

Block make_block(const SwaShape& s, int64_t b, int64_t kvh, int64_t i0) {
  Block blk{b, kvh, i0, std::min(s.Lq, i0 + kBlock), 0, 0};
  int64_t first_visible = s.q_start + blk.i0 - s.window + 1 - s.k_start;
  int64_t last_visible = s.q_start + blk.i1 - 1 - s.k_start;
  blk.j_lo = std::clamp<int64_t>(first_visible, 0, s.Lk);
  blk.j_hi = std::clamp<int64_t>(last_visible + 1, 0, s.Lk);
  if (blk.j_hi < blk.j_lo) blk.j_hi = blk.j_lo;
  return blk;
}

// Copies the block's rows of a [B, Lq, HQ, D] tensor into a dense [rows, D] buffer, or back (scatter).
template <class T> void gather_rows(const T* src, T* dst, const SwaShape& s, const Block& blk) {
  int64_t G = s.HQ / s.H;
  for (int64_t i = blk.i0; i < blk.i1; ++i)
    for (int64_t g = 0; g < G; ++g)
      std::copy_n(src + ((blk.b * s.Lq + i) * s.HQ + blk.kvh * G + g) * s.D, s.D, dst + ((i - blk.i0) * G + g) * s.D);
}
template <class T> void scatter_rows(const T* src, T* dst, const SwaShape& s, const Block& blk) {
  int64_t G = s.HQ / s.H;
  for (int64_t i = blk.i0; i < blk.i1; ++i)
    for (int64_t g = 0; g < G; ++g)
      std::copy_n(src + ((i - blk.i0) * G + g) * s.D, s.D, dst + ((blk.b * s.Lq + i) * s.HQ + blk.kvh * G + g) * s.D);
}

bool visible(const SwaShape& s, int64_t i, int64_t j) {
  int64_t qpos = s.q_start + i, kpos = s.k_start + j;
  return kpos <= qpos && qpos - kpos < s.window;
}

template <class T> const T* kv_rows(const T* base, const SwaShape& s, const Block& blk) {
  return base + ((blk.b * s.Lk + blk.j_lo) * s.H + blk.kvh) * s.D;
}
template <class T> T* kv_rows(T* base, const SwaShape& s, const Block& blk) {
  return base + ((blk.b * s.Lk + blk.j_lo) * s.H + blk.kvh) * s.D;
}

int64_t lse_index(const SwaShape& s, const Block& blk, int64_t r) {
  int64_t G = s.HQ / s.H;
  return (blk.b * s.Lq + blk.i0 + r / G) * s.HQ + blk.kvh * G + r % G;
}

}  // namespace

template <class T> void swa_forward(const T* q, const T* k, const T* v, T* out, T* lse, const SwaShape& s) {
  int64_t G = s.HQ / s.H, blocks = (s.Lq + kBlock - 1) / kBlock;
  const T neg_inf = -std::numeric_limits<T>::infinity();
#pragma omp parallel
  {
    std::vector<T> qb, scores, ob;
#pragma omp for collapse(3) schedule(dynamic)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t kvh = 0; kvh < s.H; ++kvh)
        for (int64_t blk_i = 0; blk_i < blocks; ++blk_i) {
          Block blk = make_block(s, b, kvh, blk_i * kBlock);
          int64_t rows = blk.rows(G), nk = blk.keys();
          qb.resize(rows * s.D);
          ob.assign(rows * s.D, T(0));
          scores.resize(std::max<int64_t>(1, rows * nk));
          gather_rows(q, qb.data(), s, blk);
          if (nk > 0) {
            gemm<T>(false, true, rows, nk, s.D, T(s.scale), qb.data(), s.D, kv_rows(k, s, blk), s.H * s.D, T(0),
                    scores.data(), nk);
          }
          for (int64_t r = 0; r < rows; ++r) {
            int64_t i = blk.i0 + r / G;
            T* row = scores.data() + r * nk;
            T mx = neg_inf;
            for (int64_t j = 0; j < nk; ++j) {
              if (!visible(s, i, blk.j_lo + j)) row[j] = neg_inf;
              mx = std::max(mx, row[j]);
            }
            if (mx == neg_inf) {  // no visible key: zero output
              std::fill(row, row + nk, T(0));
              lse[lse_index(s, blk, r)] = neg_inf;
              continue;
            }
            T sum = 0;
            for (int64_t j = 0; j < nk; ++j) sum += row[j] = std::exp(row[j] - mx);
            for (int64_t j = 0; j < nk; ++j) row[j] /= sum;
            lse[lse_index(s, blk, r)] = mx + std::log(sum);
          }
          if (nk > 0) {
            gemm<T>(false, false, rows, s.D, nk, T(1), scores.data(), nk, kv_rows(v, s, blk), s.H * s.D, T(0),
                    ob.data(), s.D);
          }
          scatter_rows(ob.data(), out, s, blk);
        }
  }
}

template <class T>
void swa_backward(const T* dout, const T* q, const T* k, const T* v, const T* out, const T* lse, T* dq, T* dk, T* dv,
                  const SwaShape& s) {
  int64_t G = s.HQ / s.H, blocks = (s.Lq + kBlock - 1) / kBlock;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  std::fill(dk, dk + s.B * s.Lk * s.H * s.D, T(0));
  std::fill(dv, dv + s.B * s.Lk * s.H * s.D, T(0));
  // One (batch, KV head) per work item: its blocks overlap in keys, so they accumulate dk/dv in sequence.
#pragma omp parallel
  {
    std::vector<T> qb, dob, ob, p, dp, dqb, delta;
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t kvh = 0; kvh < s.H; ++kvh)
        for (int64_t blk_i = 0; blk_i < blocks; ++blk_i) {
          Block blk = make_block(s, b, kvh, blk_i * kBlock);
          int64_t rows = blk.rows(G), nk = blk.keys();
          qb.resize(rows * s.D), dob.resize(rows * s.D), ob.resize(rows * s.D), dqb.assign(rows * s.D, T(0));
          gather_rows(q, qb.data(), s, blk);
          gather_rows(dout, dob.data(), s, blk);
          gather_rows(out, ob.data(), s, blk);
          if (nk > 0) {
            p.resize(rows * nk), dp.resize(rows * nk), delta.resize(rows);
            gemm<T>(false, true, rows, nk, s.D, T(s.scale), qb.data(), s.D, kv_rows(k, s, blk), s.H * s.D, T(0),
                    p.data(), nk);
            for (int64_t r = 0; r < rows; ++r) {
              int64_t i = blk.i0 + r / G;
              T l = lse[lse_index(s, blk, r)];
              T* row = p.data() + r * nk;
              for (int64_t j = 0; j < nk; ++j)
                row[j] = (l == neg_inf || !visible(s, i, blk.j_lo + j)) ? T(0) : std::exp(row[j] - l);
              T d = 0;
              for (int64_t c = 0; c < s.D; ++c) d += dob[r * s.D + c] * ob[r * s.D + c];
              delta[r] = d;
            }
            gemm<T>(false, true, rows, nk, s.D, T(1), dob.data(), s.D, kv_rows(v, s, blk), s.H * s.D, T(0), dp.data(),
                    nk);
            for (int64_t r = 0; r < rows; ++r)  // dS = P (dP - delta); reuse dp for it
              for (int64_t j = 0; j < nk; ++j) dp[r * nk + j] = p[r * nk + j] * (dp[r * nk + j] - delta[r]);
            gemm<T>(false, false, rows, s.D, nk, T(s.scale), dp.data(), nk, kv_rows(k, s, blk), s.H * s.D, T(0),
                    dqb.data(), s.D);
            gemm<T>(true, false, nk, s.D, rows, T(s.scale), dp.data(), nk, qb.data(), s.D, T(1), kv_rows(dk, s, blk),
                    s.H * s.D);
            gemm<T>(true, false, nk, s.D, rows, T(1), p.data(), nk, dob.data(), s.D, T(1), kv_rows(dv, s, blk),
                    s.H * s.D);
          }
          scatter_rows(dqb.data(), dq, s, blk);
        }
  }
}

template void swa_forward<float>(const float*, const float*, const float*, float*, float*, const SwaShape&);
template void swa_forward<double>(const double*, const double*, const double*, double*, double*, const SwaShape&);
template void swa_backward<float>(const float*, const float*, const float*, const float*, const float*, const float*,
                                  float*, float*, float*, const SwaShape&);
template void swa_backward<double>(const double*, const double*, const double*, const double*, const double*,
                                   const double*, double*, double*, double*, const SwaShape&);

}  // namespace hsa::cpu

#include "cpu/block_attention.h"

#include "cpu/parallel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace hsa::cpu {

// A plain reference: one (block, head) pair per task, its T x T probabilities in a task-local buffer. Blocks are
// short (a chunk plus its [CLS] row, ~65 rows), so the quadratic buffer is small and no tiling is needed.
namespace {

// Element (i, c) of head h in block n: rows of a block are H * D apart.
inline int64_t at(const BlockAttentionDims& d, int64_t n, int64_t i, int64_t h) {
  return ((n * d.block_len + i) * d.heads + h) * d.head_dim;
}

template <class T>
T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
  for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
  return s;
}

// p[i, j] = scale * q_i . k_j for one (block, head).
template <class T>
void scores(const T* q, const T* k, const BlockAttentionDims& d, T scale, int64_t n, int64_t h, T* p) {
  const int64_t len = d.block_len;
  for (int64_t i = 0; i < len; ++i)
    for (int64_t j = 0; j < len; ++j) p[i * len + j] = scale * dot(q + at(d, n, i, h), k + at(d, n, j, h), d.head_dim);
}

// log sum_j exp(row[j]), shifted by the maximum so it cannot overflow.
template <class T>
T log_sum_exp(const T* row, int64_t len) {
  T mx = *std::max_element(row, row + len), sum = 0;
  for (int64_t j = 0; j < len; ++j) sum += std::exp(row[j] - mx);
  return mx + std::log(sum);
}

// Scores to probabilities: row[j] = exp(row[j] - lse).
template <class T>
void normalise(T* row, int64_t len, T lse) {
  for (int64_t j = 0; j < len; ++j) row[j] = std::exp(row[j] - lse);
}

// Runs fn(n, h, p) for every (block n, head h) pair, in parallel when the work is large enough; p holds the pair's
// T x T scores scale * q_i . k_j in a thread-local buffer that fn may overwrite.
template <class T, class Fn>
void for_each_block_head(const T* q, const T* k, const BlockAttentionDims& d, double scale, Fn&& fn) {
  const int64_t len = d.block_len, tasks = d.blocks * d.heads;
  const bool parallel = worth_parallel(tasks * len * len * d.head_dim);
#pragma omp parallel if (parallel)
  {
    std::vector<T> p(size_t(len * len));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t n = task / d.heads, h = task % d.heads;
      scores(q, k, d, T(scale), n, h, p.data());
      fn(n, h, p.data());
    }
  }
}

}  // namespace

template <class T>
void block_attention_forward(const T* q, const T* k, const T* v, T* out, T* lse, const BlockAttentionDims& d,
                             double scale) {
  const int64_t len = d.block_len, dim = d.head_dim;
  for_each_block_head(q, k, d, scale, [&](int64_t n, int64_t h, T* p) {
    for (int64_t i = 0; i < len; ++i) {
      T* pi = p + i * len;
      T& l = lse[(n * len + i) * d.heads + h];
      l = log_sum_exp(pi, len);
      normalise(pi, len, l);
      T* o = out + at(d, n, i, h);
      std::fill(o, o + dim, T(0));
      for (int64_t j = 0; j < len; ++j) {
        const T pij = pi[j];
        const T* vj = v + at(d, n, j, h);
        for (int64_t c = 0; c < dim; ++c) o[c] += pij * vj[c];
      }
    }
  });
}

template <class T>
void block_attention_backward(const T* dout, const T* q, const T* k, const T* v, const T* out, const T* lse, T* dq,
                              T* dk, T* dv, const BlockAttentionDims& d, double scale) {
  const int64_t len = d.block_len, dim = d.head_dim;
  for_each_block_head(q, k, d, scale, [&](int64_t n, int64_t h, T* p) {
    for (int64_t i = 0; i < len; ++i) normalise(p + i * len, len, lse[(n * len + i) * d.heads + h]);
    for (int64_t j = 0; j < len; ++j) {
      std::fill(dk + at(d, n, j, h), dk + at(d, n, j, h) + dim, T(0));
      std::fill(dv + at(d, n, j, h), dv + at(d, n, j, h) + dim, T(0));
    }
    for (int64_t i = 0; i < len; ++i) {
      const T* doi = dout + at(d, n, i, h);
      const T* qi = q + at(d, n, i, h);
      T* dqi = dq + at(d, n, i, h);
      std::fill(dqi, dqi + dim, T(0));
      const T delta = dot(doi, out + at(d, n, i, h), dim);
      for (int64_t j = 0; j < len; ++j) {
        const T pij = p[i * len + j];
        const T ds = pij * (dot(doi, v + at(d, n, j, h), dim) - delta) * T(scale);
        const T* kj = k + at(d, n, j, h);
        T* dkj = dk + at(d, n, j, h);
        T* dvj = dv + at(d, n, j, h);
        for (int64_t c = 0; c < dim; ++c) {
          dqi[c] += ds * kj[c];
          dkj[c] += ds * qi[c];
          dvj[c] += pij * doi[c];
        }
      }
    }
  });
}

template void block_attention_forward<float>(const float*, const float*, const float*, float*, float*,
                                             const BlockAttentionDims&, double);
template void block_attention_forward<double>(const double*, const double*, const double*, double*, double*,
                                              const BlockAttentionDims&, double);
template void block_attention_backward<float>(const float*, const float*, const float*, const float*, const float*,
                                              const float*, float*, float*, float*, const BlockAttentionDims&, double);
template void block_attention_backward<double>(const double*, const double*, const double*, const double*,
                                               const double*, const double*, double*, double*, double*,
                                               const BlockAttentionDims&, double);

}  // namespace hsa::cpu

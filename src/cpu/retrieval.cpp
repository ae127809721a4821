#include "cpu/retrieval.h"

#include "cpu/gemm.h"

#include <cmath>
#include <limits>
#include <vector>

#include <omp.h>

namespace hsa::cpu {

namespace {

// Running top-K of one query row, best first in best_s/best_c[0, count); returns the new count.
// "Better" = higher score, or an equal score on a more recent chunk. Chunks are offered in ascending order, so a
// newcomer beats every kept chunk of equal score: ">=" below is the tie rule. NaN scores are never kept.
// The entry gate (the K-th best score once K are kept) lives in a register: most chunks of a long row fail it.
// Measured against a branch-free insert position and against a buffer compacted with nth_element, this plain
// insertion walk was the fastest for K = 8 and K = 64 over 32..1024 chunks (at C = 1024, K = 64 it costs more than
// the row's scores: the place to improve).
template <class T>
int64_t offer_chunks(const T* __restrict row, int64_t c_begin, int64_t c_end, int64_t k, T* __restrict best_s,
                     int32_t* __restrict best_c, int64_t count) {
  T gate = count == k ? best_s[k - 1] : -std::numeric_limits<T>::infinity();
  for (int64_t c = c_begin; c < c_end; ++c) {
    T s = row[c - c_begin];
    if (!(s >= gate)) continue;
    int64_t j = count < k ? count++ : k - 1;  // the free slot, or the dropped worst one
    for (; j > 0 && s >= best_s[j - 1]; --j) {
      best_s[j] = best_s[j - 1];
      best_c[j] = best_c[j - 1];
    }
    best_s[j] = s;
    best_c[j] = static_cast<int32_t>(c);
    if (count == k) gate = best_s[k - 1];
  }
  return count;
}

// Below this many multiply-adds a call runs on the calling thread: waking a team costs more than the work, and
// decode steps and tests make many tiny calls.
constexpr int64_t kParallelMinWork = 1 << 16;

// In T: expf for f32 is several times cheaper than exp, and the weights are stored in T anyway.
template <class T>
T sigmoid(T x) {
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

}  // namespace

template <class T>
void retrieval_forward(const T* qr, const T* landmarks, int32_t* indices, T* weights, T* scores,
                       const RetrievalDims& d, double scale) {
  const int64_t L = d.seq_len, C = d.chunks, H = d.heads, dr = d.dim, K = d.topk;
  const int64_t row_stride = H * dr;  // qr and landmarks rows of one head are H*dr apart
  const int64_t tiles = (L + kRetrievalTileRows - 1) / kRetrievalTileRows;
  const int64_t tasks = d.batch * tiles * H;
  const int64_t work = d.batch * L * H * dr * visible_chunks(d.q_start + L - 1, d);
  BlasSerialScope serial_blas;  // the GEMMs below run one per OpenMP thread
#pragma omp parallel if (tasks > 1 && work >= kParallelMinWork)
  {
    const int64_t tile_rows = std::min(L, kRetrievalTileRows);
    std::vector<T> tile(static_cast<size_t>(tile_rows * std::min(C, kRetrievalTileChunks)));
    std::vector<T> best_s(static_cast<size_t>(tile_rows * K));
    std::vector<int32_t> best_c(static_cast<size_t>(tile_rows * K));
    std::vector<int64_t> count(static_cast<size_t>(tile_rows));
    // Later tiles see more chunks and cost more: hand them out first (dynamic) for balance.
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      int64_t h = task % H, tile_idx = tiles - 1 - (task / H) % tiles, b = task / (H * tiles);
      int64_t t0 = tile_idx * kRetrievalTileRows, t1 = std::min(L, t0 + kRetrievalTileRows), m = t1 - t0;
      // Visibility only grows with position, so the tile's last row sees the most chunks.
      int64_t n_max = visible_chunks(d.q_start + t1 - 1, d);
      std::fill(count.begin(), count.end(), 0);
      for (int64_t c0 = 0; c0 < n_max; c0 += kRetrievalTileChunks) {
        int64_t c1 = std::min(n_max, c0 + kRetrievalTileChunks), ld = c1 - c0;
        gemm<T>(false, true, m, ld, dr, T(scale), qr + ((b * L + t0) * H + h) * dr, row_stride,
                landmarks + ((b * C + c0) * H + h) * dr, row_stride, T(0), tile.data(), ld);
        for (int64_t t = t0; t < t1; ++t) {
          int64_t nv = visible_chunks(d.q_start + t, d), row = t - t0;
          count[row] = offer_chunks(tile.data() + row * ld, c0, std::min(c1, nv), K, best_s.data() + row * K,
                                    best_c.data() + row * K, count[row]);
        }
      }
      for (int64_t t = t0; t < t1; ++t) {
        int64_t row = t - t0, n = count[row];
        T* bs = best_s.data() + row * K;
        int32_t* bc = best_c.data() + row * K;
        // Slot order: best first (softmax), or most recent first (stick-breaking, the order the sticks are broken
        // in; a chunk's slot is the number of kept chunks more recent than it, ids being distinct).
        int64_t out = ((b * L + t) * H + h) * K;
        int32_t* oc = indices + out;
        T *os = scores + out, *ow = weights + out;
        for (int64_t i = 0; i < n; ++i) {
          int64_t slot = i;
          if (d.stick_breaking) {
            slot = 0;
            for (int64_t j = 0; j < n; ++j) slot += bc[j] > bc[i];
          }
          oc[slot] = bc[i];
          os[slot] = bs[i];
        }
        for (int64_t i = n; i < K; ++i) {
          oc[i] = -1;
          os[i] = T(0);
          ow[i] = T(0);
        }
        if (d.stick_breaking) {
          T remaining = 1;
          for (int64_t i = 0; i < n; ++i) {
            ow[i] = sigmoid(os[i]) * remaining;
            remaining *= sigmoid(-os[i]);  // 1 - sigmoid(s), without cancellation
          }
        } else if (n > 0) {
          T mx = os[0], sum = 0;  // the best score: slots are sorted
          for (int64_t i = 0; i < n; ++i) sum += ow[i] = std::exp(os[i] - mx);
          for (int64_t i = 0; i < n; ++i) ow[i] /= sum;
        }
      }
    }
  }
}

template <class T>
int64_t retrieval_backward(const T* dweights, const T* qr, const T* landmarks, const int32_t* indices,
                           const T* weights, const T* scores, T* dqr, T* dlandmarks, const RetrievalDims& d,
                           double scale) {
  const int64_t B = d.batch, L = d.seq_len, C = d.chunks, H = d.heads, dr = d.dim, K = d.topk;
  const int64_t rows = B * L * H;
  // 1. Per query row: dscore of each filled slot (times scale, i.e. the gradient of the raw dot product) into
  //    dsc, and dqr = sum_i dsc_i * landmarks[c_i].
  std::vector<T> dsc(static_cast<size_t>(rows * K));
  int64_t bad = -1;
  const bool parallel = rows * K * dr >= kParallelMinWork;
#pragma omp parallel for if (parallel) schedule(static) reduction(max : bad)
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* idx = indices + r * K;
    const T *w = weights + r * K, *dw = dweights + r * K, *s = scores + r * K;
    T* g = dsc.data() + r * K;
    bool ok = true;
    for (int64_t i = 0; i < K; ++i) ok = ok && idx[i] >= -1 && idx[i] < C;
    if (!ok) {
      for (int64_t i = 0; i < K; ++i)
        if (idx[i] < -1 || idx[i] >= C) bad = std::max(bad, r * K + i);
      std::fill(g, g + K, T(0));
      continue;
    }
    if (d.stick_breaking) {
      // w_i = sig_i * prod_{j<i} (1 - sig_j):  dw_i/ds_i = w_i (1 - sig_i),  dw_i/ds_j = -sig_j w_i for j < i.
      double later = 0;  // sum over filled slots after this one of dw_i * w_i
      for (int64_t i = K - 1; i >= 0; --i) {
        if (idx[i] < 0) {
          g[i] = 0;
          continue;
        }
        double sig = sigmoid(double(s[i])), wdw = double(w[i]) * double(dw[i]);
        g[i] = T(scale * (wdw * sigmoid(-double(s[i])) - sig * later));  // 1 - sig without cancellation
        later += wdw;
      }
    } else {
      double dot = 0;  // softmax: ds_i = w_i (dw_i - sum_j w_j dw_j)
      for (int64_t i = 0; i < K; ++i)
        if (idx[i] >= 0) dot += double(w[i]) * double(dw[i]);
      for (int64_t i = 0; i < K; ++i) g[i] = idx[i] >= 0 ? T(scale * double(w[i]) * (double(dw[i]) - dot)) : T(0);
    }
    int64_t b = r / (L * H), h = r % H;
    T* out = dqr + r * dr;
    std::fill(out, out + dr, T(0));
    for (int64_t i = 0; i < K; ++i) {
      if (idx[i] < 0) continue;
      const T* lm = landmarks + ((b * C + idx[i]) * H + h) * dr;
      for (int64_t j = 0; j < dr; ++j) out[j] += g[i] * lm[j];
    }
  }
  if (bad >= 0) return bad;

  // 2. Group the (query, slot) pairs of each (b, h) by chunk: a counting sort, queries ascending within a chunk.
  //    Entry = t*K + i. begin[p*(C+1) + c] is chunk c's first entry in pair p's region of L*K entries.
  const int64_t pairs = B * H;
  std::vector<int64_t> begin(static_cast<size_t>(pairs * (C + 1)));
  std::vector<int32_t> entries(static_cast<size_t>(pairs * L * K));
#pragma omp parallel if (parallel && pairs > 1)
  {
    std::vector<int64_t> cursor(C);
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < pairs; ++p) {
      int64_t b = p / H, h = p % H;
      int64_t* bp = begin.data() + p * (C + 1);
      std::fill(cursor.begin(), cursor.end(), 0);
      for (int64_t t = 0; t < L; ++t) {
        const int32_t* idx = indices + ((b * L + t) * H + h) * K;
        for (int64_t i = 0; i < K; ++i)
          if (idx[i] >= 0) ++cursor[idx[i]];
      }
      bp[0] = 0;
      for (int64_t c = 0; c < C; ++c) {
        bp[c + 1] = bp[c] + cursor[c];
        cursor[c] = bp[c];
      }
      int32_t* e = entries.data() + p * L * K;
      for (int64_t t = 0; t < L; ++t) {
        const int32_t* idx = indices + ((b * L + t) * H + h) * K;
        for (int64_t i = 0; i < K; ++i)
          if (idx[i] >= 0) e[cursor[idx[i]]++] = static_cast<int32_t>(t * K + i);
      }
    }
  }

  // 3. dlandmarks[b, c, h] = sum over c's entries (t, i) of dsc[t, i] * qr[t, h], one chunk per iteration.
#pragma omp parallel for if (parallel) schedule(dynamic, 16)
  for (int64_t pc = 0; pc < pairs * C; ++pc) {
    int64_t p = pc / C, c = pc % C, b = p / H, h = p % H;
    T* out = dlandmarks + ((b * C + c) * H + h) * dr;
    std::fill(out, out + dr, T(0));
    const int64_t* bp = begin.data() + p * (C + 1);
    const int32_t* e = entries.data() + p * L * K;
    for (int64_t j = bp[c]; j < bp[c + 1]; ++j) {
      int64_t t = e[j] / K, i = e[j] % K;
      int64_t r = (b * L + t) * H + h;
      T g = dsc[r * K + i];
      const T* q = qr + r * dr;
      for (int64_t k = 0; k < dr; ++k) out[k] += g * q[k];
    }
  }
  return -1;
}

template void retrieval_forward<float>(const float*, const float*, int32_t*, float*, float*, const RetrievalDims&,
                                       double);
template void retrieval_forward<double>(const double*, const double*, int32_t*, double*, double*,
                                        const RetrievalDims&, double);
template int64_t retrieval_backward<float>(const float*, const float*, const float*, const int32_t*, const float*,
                                           const float*, float*, float*, const RetrievalDims&, double);
template int64_t retrieval_backward<double>(const double*, const double*, const double*, const int32_t*,
                                            const double*, const double*, double*, double*, const RetrievalDims&,
                                            double);

}  // namespace hsa::cpu

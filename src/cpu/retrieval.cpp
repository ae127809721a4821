#include "cpu/retrieval.h"

#include "cpu/gemm.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace hsa::cpu {

namespace {
constexpr int64_t kBlock = 64;  // queries per score GEMM

template <class T> T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

// Slot k of query (b, t, h) in the [B, L, H, K] outputs.
int64_t slot(const RetrievalShape& s, int64_t b, int64_t t, int64_t h) { return ((b * s.L + t) * s.H + h) * s.K; }
}  // namespace

int64_t visible_chunks(const RetrievalShape& s, int64_t pos) {
  int64_t n = std::min(s.C, pos / s.chunk_size);
  if (s.window > 0) n = std::min(n, pos - s.window >= 0 ? (pos - s.window) / s.chunk_size + 1 : 0);
  return std::max<int64_t>(n, 0);
}

template <class T>
void retrieval_forward(const T* qr, const T* landmarks, int32_t* indices, T* weights, T* scores,
                       const RetrievalShape& s) {
  int64_t blocks = (s.L + kBlock - 1) / kBlock;
#pragma omp parallel
  {
    std::vector<T> block_scores;
    std::vector<std::pair<T, int32_t>> best;
#pragma omp for collapse(3) schedule(dynamic)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t blk = 0; blk < blocks; ++blk) {
          int64_t t0 = blk * kBlock, t1 = std::min(s.L, t0 + kBlock);
          int64_t nc = visible_chunks(s, s.q_start + t1 - 1);  // the block's last query sees the most
          block_scores.resize(std::max<int64_t>(1, (t1 - t0) * nc));
          if (nc > 0)
            gemm<T>(false, true, t1 - t0, nc, s.dr, T(s.scale), qr + ((b * s.L + t0) * s.H + h) * s.dr, s.H * s.dr,
                    landmarks + (b * s.C * s.H + h) * s.dr, s.H * s.dr, T(0), block_scores.data(), nc);
          for (int64_t t = t0; t < t1; ++t) {
            int64_t n = visible_chunks(s, s.q_start + t);
            const T* row = block_scores.data() + (t - t0) * nc;
            // Best first: higher score, then the more recent chunk.
            auto better = [](const std::pair<T, int32_t>& a, const std::pair<T, int32_t>& b) {
              return a.first > b.first || (a.first == b.first && a.second > b.second);
            };
            best.clear();
            for (int64_t c = 0; c < n; ++c) best.emplace_back(row[c], static_cast<int32_t>(c));
            int64_t k = std::min<int64_t>(s.K, n);
            std::partial_sort(best.begin(), best.begin() + k, best.end(), better);
            best.resize(k);
            if (s.stick_breaking)
              std::sort(best.begin(), best.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
            int64_t o = slot(s, b, t, h);
            T mx = k > 0 ? best[0].first : T(0);
            for (int64_t i = 0; i < k; ++i) mx = std::max(mx, best[i].first);
            T sum = 0, remaining = 1;
            for (int64_t i = 0; i < s.K; ++i) {
              if (i >= k) {
                indices[o + i] = -1, weights[o + i] = 0, scores[o + i] = 0;
                continue;
              }
              indices[o + i] = best[i].second;
              scores[o + i] = best[i].first;
              if (s.stick_breaking) {
                T sig = sigmoid(best[i].first);
                weights[o + i] = sig * remaining;
                remaining *= (T(1) - sig);
              } else {
                sum += weights[o + i] = std::exp(best[i].first - mx);
              }
            }
            if (!s.stick_breaking)
              for (int64_t i = 0; i < k; ++i) weights[o + i] /= sum;
          }
        }
  }
}

template <class T>
void retrieval_backward(const T* dweights, const T* qr, const T* landmarks, const int32_t* indices, const T* weights,
                        const T* scores, T* dqr, T* dlandmarks, const RetrievalShape& s) {
  std::fill(dlandmarks, dlandmarks + s.B * s.C * s.H * s.dr, T(0));
  // One (batch, head) per work item: the landmark gradient of a chunk gathers over all its queries in order.
#pragma omp parallel
  {
    std::vector<T> dscore(s.K), suffix;
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t t = 0; t < s.L; ++t) {
          int64_t o = slot(s, b, t, h);
          const T* w = weights + o;
          const T* dw = dweights + o;
          int64_t k = 0;
          while (k < s.K && indices[o + k] >= 0) ++k;
          if (s.stick_breaking) {
            // w_i = sig_i * prod_{j<i} (1 - sig_j): ds_i = dw_i sig_i (1 - sig_i) R_i - sig_i sum_{m>i} dw_m w_m.
            T remaining = 1;
            suffix.assign(k + 1, T(0));
            for (int64_t i = k - 1; i >= 0; --i) suffix[i] = suffix[i + 1] + dw[i] * w[i];
            for (int64_t i = 0; i < k; ++i) {
              T sig = sigmoid(scores[o + i]);
              dscore[i] = dw[i] * sig * (T(1) - sig) * remaining - sig * suffix[i + 1];
              remaining *= (T(1) - sig);
            }
          } else {
            T dot = 0;
            for (int64_t i = 0; i < k; ++i) dot += w[i] * dw[i];
            for (int64_t i = 0; i < k; ++i) dscore[i] = w[i] * (dw[i] - dot);
          }
          T* dq = dqr + ((b * s.L + t) * s.H + h) * s.dr;
          const T* q = qr + ((b * s.L + t) * s.H + h) * s.dr;
          std::fill(dq, dq + s.dr, T(0));
          for (int64_t i = 0; i < k; ++i) {
            int64_t c = indices[o + i];
            const T* lm = landmarks + ((b * s.C + c) * s.H + h) * s.dr;
            T* dlm = dlandmarks + ((b * s.C + c) * s.H + h) * s.dr;
            T g = T(s.scale) * dscore[i];
            for (int64_t d = 0; d < s.dr; ++d) {
              dq[d] += g * lm[d];
              dlm[d] += g * q[d];
            }
          }
        }
  }
}

template void retrieval_forward<float>(const float*, const float*, int32_t*, float*, float*, const RetrievalShape&);
template void retrieval_forward<double>(const double*, const double*, int32_t*, double*, double*,
                                        const RetrievalShape&);
template void retrieval_backward<float>(const float*, const float*, const float*, const int32_t*, const float*,
                                        const float*, float*, float*, const RetrievalShape&);
template void retrieval_backward<double>(const double*, const double*, const double*, const int32_t*, const double*,
                                         const double*, double*, double*, const RetrievalShape&);

}  // namespace hsa::cpu

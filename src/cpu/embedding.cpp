#include "cpu/embedding.h"

#include <hsa/dtype.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace hsa::cpu {

template <class T> void embedding_forward(const T* table, const int32_t* ids, T* y, int64_t n, int64_t dm) {
#pragma omp parallel for schedule(static) if (n * dm > 32768)
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(y + i * dm, table + static_cast<int64_t>(ids[i]) * dm, static_cast<size_t>(dm) * sizeof(T));
}

template <class T>
void embedding_backward(const T* dy, const int32_t* ids, T* dtable, int64_t n, int64_t dm, int64_t vocab_size) {
  // Counting sort of the positions by id (stable, so each id's positions stay ascending); then each row of
  // dtable is owned by one thread, which sums its positions in that fixed order.
  std::vector<int64_t> start(static_cast<size_t>(vocab_size) + 1, 0);
  for (int64_t i = 0; i < n; ++i) ++start[static_cast<size_t>(ids[i]) + 1];
  for (int64_t v = 0; v < vocab_size; ++v) start[v + 1] += start[v];
  std::vector<int64_t> order(static_cast<size_t>(n));
  {
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(next[static_cast<size_t>(ids[i])]++)] = i;
  }
#pragma omp parallel for schedule(dynamic, 64) if (vocab_size * dm > 32768)
  for (int64_t v = 0; v < vocab_size; ++v) {
    T* row = dtable + v * dm;
    std::fill(row, row + dm, T(0));
    for (int64_t j = start[v]; j < start[v + 1]; ++j) {
      const T* src = dy + order[static_cast<size_t>(j)] * dm;
      for (int64_t k = 0; k < dm; ++k) row[k] += src[k];
    }
  }
}

template void embedding_forward<float>(const float*, const int32_t*, float*, int64_t, int64_t);
template void embedding_forward<double>(const double*, const int32_t*, double*, int64_t, int64_t);
template void embedding_forward<bf16>(const bf16*, const int32_t*, bf16*, int64_t, int64_t);
template void embedding_backward<float>(const float*, const int32_t*, float*, int64_t, int64_t, int64_t);
template void embedding_backward<double>(const double*, const int32_t*, double*, int64_t, int64_t, int64_t);

}  // namespace hsa::cpu

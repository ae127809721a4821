#include "cpu/embedding.h"

#include <algorithm>

namespace hsa::cpu {

template <class T> void embedding_forward(const T* table, const int32_t* ids, T* y, int64_t n, int64_t dm) {
#pragma omp parallel for schedule(static) if (n * dm > 65536)
  for (int64_t i = 0; i < n; ++i) std::copy(table + int64_t(ids[i]) * dm, table + int64_t(ids[i] + 1) * dm, y + i * dm);
}

// Threads split the embedding columns: no two threads touch the same value, and every value receives its
// additions in token order, so the result does not depend on the thread count.
template <class T> void embedding_backward(const T* dy, const int32_t* ids, T* dtable, int64_t n, int64_t dm) {
  constexpr int64_t kBlock = 16;
  int64_t blocks = (dm + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n * dm > 65536)
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t lo = b * kBlock, hi = std::min(dm, lo + kBlock);
    for (int64_t i = 0; i < n; ++i) {
      T* row = dtable + int64_t(ids[i]) * dm;
      const T* g = dy + i * dm;
      for (int64_t j = lo; j < hi; ++j) row[j] += g[j];
    }
  }
}

template void embedding_forward<float>(const float*, const int32_t*, float*, int64_t, int64_t);
template void embedding_forward<double>(const double*, const int32_t*, double*, int64_t, int64_t);
template void embedding_backward<float>(const float*, const int32_t*, float*, int64_t, int64_t);
template void embedding_backward<double>(const double*, const int32_t*, double*, int64_t, int64_t);

}  // namespace hsa::cpu

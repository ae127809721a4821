#include "cpu/chunk_pool.h"

#include <algorithm>

namespace hsa::cpu {

namespace {
// Below this many elements a call runs on the calling thread: waking a team costs more than the work.
constexpr int64_t kParallelMinWork = 1 << 16;
}  // namespace

template <class T>
void chunk_mean_forward(const T* x, T* pooled, int64_t batch, int64_t seq_len, int64_t dim, int64_t chunk_size) {
  int64_t chunks = seq_len / chunk_size;
  const T inv = T(1) / T(chunk_size);
#pragma omp parallel for if (batch * seq_len * dim >= kParallelMinWork) schedule(static)
  for (int64_t bc = 0; bc < batch * chunks; ++bc) {
    int64_t b = bc / chunks, c = bc % chunks;
    const T* xc = x + (b * seq_len + c * chunk_size) * dim;
    T* out = pooled + bc * dim;
    // Sum the S rows into the output row (contiguous, vectorises), then scale once.
    std::fill(out, out + dim, T(0));
    for (int64_t j = 0; j < chunk_size; ++j) {
      const T* row = xc + j * dim;
      for (int64_t i = 0; i < dim; ++i) out[i] += row[i];
    }
    for (int64_t i = 0; i < dim; ++i) out[i] *= inv;
  }
}

template <class T>
void chunk_mean_backward(const T* dpooled, T* dx, int64_t batch, int64_t seq_len, int64_t dim, int64_t chunk_size) {
  int64_t chunks = seq_len / chunk_size, covered = chunks * chunk_size;
  const T inv = T(1) / T(chunk_size);
#pragma omp parallel for if (batch * seq_len * dim >= kParallelMinWork) schedule(static)
  for (int64_t bt = 0; bt < batch * seq_len; ++bt) {
    int64_t b = bt / seq_len, t = bt % seq_len;
    T* out = dx + bt * dim;
    if (t >= covered) {
      std::fill(out, out + dim, T(0));
      continue;
    }
    const T* g = dpooled + (b * chunks + t / chunk_size) * dim;
    for (int64_t i = 0; i < dim; ++i) out[i] = g[i] * inv;
  }
}

template void chunk_mean_forward<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t);
template void chunk_mean_forward<double>(const double*, double*, int64_t, int64_t, int64_t, int64_t);
template void chunk_mean_backward<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t);
template void chunk_mean_backward<double>(const double*, double*, int64_t, int64_t, int64_t, int64_t);

}  // namespace hsa::cpu

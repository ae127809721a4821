#include "cpu/swa_attention.h"

#include "cpu/fast_math.h"
#include "cpu/gemm.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

namespace hsa::cpu {

namespace {

// Work is split into query blocks: Bq consecutive query rows with all G query heads of one KV head, i.e.
// Bq * G GEMM rows ordered (row, head) so that a row's G heads, which share one mask, are adjacent. A block
// walks the keys of its window in blocks of kKeyBlock with an online softmax, so memory per thread stays
// O(Bq * G * kKeyBlock) whatever the window. Both sizes depend only on the shapes, never on the thread count,
// so results are reproducible across machines.
constexpr int64_t kKeyBlock = 256;

// About 256 GEMM rows per block: big enough for BLAS to run near its peak, small enough that a 4K-token sequence
// still gives dozens of blocks per KV head to share among threads.
int64_t query_block_rows(int64_t group) { return std::clamp<int64_t>(256 / group, 16, 64); }

// The backward pass gives each task (a run of query blocks of one (batch, KV head)) private dk/dv accumulators
// over the keys it touches, summed afterwards in a fixed order: deterministic, no atomics, no locks. Runs are
// lengthened until those accumulators hold at most this many times the rows of dk/dv (relevant when the window
// covers the whole sequence: then every block touches nearly every key).
constexpr int64_t kPartialBudget = 16;

// Below this many FLOPs (about 20 us on one core) a call runs on the calling thread: waking a team costs more,
// and on a loaded machine each barrier can wait a whole time slice for a descheduled thread.
constexpr double kMinParallelFlops = 1e6;

template <class Task>
bool worth_parallel(const std::vector<Task>& tasks, int64_t group, int64_t dim) {
  double pairs = 0;
  for (const Task& t : tasks) pairs += double(t.work);
  return tasks.size() > 1 && 4.0 * double(group * dim) * pairs >= kMinParallelFlops;
}


// Keys [lo, hi) of query row i (empty when lo >= hi). Both ends are non-decreasing in i, so the rows of a query
// block that see any key of a key block form one contiguous run.
struct KeyRange {
  int64_t lo, hi;
};
KeyRange visible_keys(const SwaDims& d, int64_t i) {
  int64_t rel = d.q_start + i - d.k_start;  // key row at the query's own position
  int64_t lo = rel >= d.window - 1 ? rel - (d.window - 1) : 0;
  int64_t hi = std::min(rel + 1, d.k_len);
  return {lo, std::max(hi, lo)};
}

// One query block: rows [i0, i1), their key ranges, and the keys any of them sees.
struct QueryBlock {
  int64_t i0, i1;
  KeyRange keys;  // union of the rows' ranges; empty when no row sees a key
  int64_t work;   // visible (row, key) pairs, for scheduling
};

std::vector<QueryBlock> make_query_blocks(const SwaDims& d, int64_t rows_per_block) {
  std::vector<QueryBlock> blocks;
  for (int64_t i0 = 0; i0 < d.q_len; i0 += rows_per_block) {
    QueryBlock qb{i0, std::min(i0 + rows_per_block, d.q_len), {0, 0}, 0};
    bool any = false;
    for (int64_t i = qb.i0; i < qb.i1; ++i) {
      KeyRange r = visible_keys(d, i);
      if (r.lo >= r.hi) continue;
      qb.keys = any ? KeyRange{std::min(qb.keys.lo, r.lo), std::max(qb.keys.hi, r.hi)} : r;
      any = true;
      qb.work += r.hi - r.lo;
    }
    blocks.push_back(qb);
  }
  return blocks;
}

// Rows [a, b) of the block (relative to i0) that see at least one key of [j0, j1).
std::pair<int64_t, int64_t> rows_seeing(const KeyRange* rows, int64_t n, int64_t j0, int64_t j1) {
  int64_t a = 0;
  while (a < n && !(rows[a].hi > j0 && rows[a].lo < j1)) ++a;
  int64_t b = a;
  while (b < n && rows[b].hi > j0 && rows[b].lo < j1) ++b;
  return {a, b};
}

// Task order for dynamic scheduling: the most work first, so a long causal tail does not start last.
template <class Task>
void sort_by_work(std::vector<Task>& tasks) {
  std::stable_sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) { return a.work > b.work; });
}

template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::unique_ptr<T[]>(new T[size_t(std::max<int64_t>(n, 1))]);
}

// Copies the G heads of query-block rows [i0, i1) of KV head kvh out of x [B, L, HQ, D] into dst [rows*G, D]: each
// row's G heads are adjacent in memory, so this is one copy per row.
template <class T>
void gather_rows(const T* x, const SwaDims& d, int64_t b, int64_t kvh, int64_t i0, int64_t i1, T* dst) {
  int64_t g = d.q_heads / d.kv_heads, gd = g * d.head_dim;
  for (int64_t i = i0; i < i1; ++i)
    std::memcpy(dst + (i - i0) * gd, x + ((b * d.q_len + i) * d.q_heads + kvh * g) * d.head_dim, sizeof(T) * gd);
}

template <class T>
void scatter_rows(const T* src, const SwaDims& d, int64_t b, int64_t kvh, int64_t i0, int64_t i1, T* x) {
  int64_t g = d.q_heads / d.kv_heads, gd = g * d.head_dim;
  for (int64_t i = i0; i < i1; ++i)
    std::memcpy(x + ((b * d.q_len + i) * d.q_heads + kvh * g) * d.head_dim, src + (i - i0) * gd, sizeof(T) * gd);
}

template <class T>
T row_max(const T* x, int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t c = 0; c < n; ++c) m = x[c] > m ? x[c] : m;
  return m;
}

// x[c] = exp(x[c] - shift) on [c0, c1) and 0 elsewhere in [0, n); returns the sum.
template <class T>
T exp_row(T* x, int64_t n, int64_t c0, int64_t c1, T shift) {
  std::fill(x, x + c0, T(0));
  std::fill(x + c1, x + n, T(0));
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = c0; c < c1; ++c) {
    T e = fast_exp(x[c] - shift);
    x[c] = e;
    sum += e;
  }
  return sum;
}

template <class T>
T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
  return s;
}

// Per-thread buffers of one query block, sized for the largest block.
template <class T>
struct BlockScratch {
  std::unique_ptr<T[]> buf;
  T *qs, *acc, *s, *s2, *row_a, *row_b;  // [M, D] x2, [M, kKeyBlock] x2, [M] x2
  T* dos;                                 // [M, D] (backward)
  std::vector<KeyRange> ranges;
  BlockScratch(int64_t max_rows, int64_t group, int64_t dim) {
    int64_t m = max_rows * group;
    buf = scratch<T>(3 * m * dim + 2 * m * kKeyBlock + 2 * m);
    qs = buf.get();
    acc = qs + m * dim;
    dos = acc + m * dim;
    s = dos + m * dim;
    s2 = s + m * kKeyBlock;
    row_a = s2 + m * kKeyBlock;
    row_b = row_a + m;
    ranges.resize(size_t(max_rows));
  }
};

template <class T>
void forward_block(const T* q, const T* k, const T* v, T* out, T* lse, const SwaDims& d, T scale, int64_t b,
                   int64_t kvh, const QueryBlock& qb, BlockScratch<T>& w) {
  const int64_t g = d.q_heads / d.kv_heads, dim = d.head_dim, nrows = qb.i1 - qb.i0, m_all = nrows * g;
  const int64_t ldk = d.kv_heads * dim;  // key row j of this KV head is at kb + j * ldk
  const T* kb = k + (b * d.k_len * d.kv_heads + kvh) * dim;
  const T* vb = v + (b * d.k_len * d.kv_heads + kvh) * dim;
  T *qs = w.qs, *acc = w.acc, *s = w.s, *mx = w.row_a, *sum = w.row_b;
  for (int64_t r = 0; r < nrows; ++r) w.ranges[size_t(r)] = visible_keys(d, qb.i0 + r);

  gather_rows(q, d, b, kvh, qb.i0, qb.i1, qs);
  std::fill(acc, acc + m_all * dim, T(0));
  std::fill(mx, mx + m_all, -std::numeric_limits<T>::infinity());
  std::fill(sum, sum + m_all, T(0));

  for (int64_t j0 = qb.keys.lo; j0 < qb.keys.hi; j0 += kKeyBlock) {
    const int64_t j1 = std::min(j0 + kKeyBlock, qb.keys.hi), nk = j1 - j0;
    auto [ra, rb] = rows_seeing(w.ranges.data(), nrows, j0, j1);
    if (ra >= rb) continue;
    const int64_t r0 = ra * g, m = (rb - ra) * g;
    // s[m, nk] (leading dimension kKeyBlock) = scale * q k^T for the rows that see this key block.
    gemm<T>(false, true, m, nk, dim, scale, qs + r0 * dim, dim, kb + j0 * ldk, ldk, T(0), s, kKeyBlock);
    for (int64_t r = ra; r < rb; ++r) {
      const KeyRange kr = w.ranges[size_t(r)];
      const int64_t c0 = std::max(kr.lo, j0) - j0, c1 = std::min(kr.hi, j1) - j0;
      for (int64_t hh = 0; hh < g; ++hh) {
        const int64_t row = r * g + hh;  // GEMM row within the block
        T* sr = s + (row - r0) * kKeyBlock;
        // Online softmax: rescale what has been accumulated when the running maximum grows.
        T m_new = std::max(mx[row], row_max(sr + c0, c1 - c0));
        T corr = std::exp(mx[row] - m_new);  // 0 on the first visible block (mx = -inf)
        sum[row] = sum[row] * corr + exp_row(sr, nk, c0, c1, m_new);
        mx[row] = m_new;
        if (corr != T(1)) {
          T* ar = acc + row * dim;
          for (int64_t c = 0; c < dim; ++c) ar[c] *= corr;
        }
      }
    }
    // acc += p v
    gemm<T>(false, false, m, dim, nk, T(1), s, kKeyBlock, vb + j0 * ldk, ldk, T(1), acc + r0 * dim, dim);
  }

  for (int64_t row = 0; row < m_all; ++row) {
    T* ar = acc + row * dim;
    const int64_t i = qb.i0 + row / g, h = kvh * g + row % g;
    if (sum[row] > T(0)) {
      T inv = T(1) / sum[row];
      for (int64_t c = 0; c < dim; ++c) ar[c] *= inv;
      lse[(b * d.q_len + i) * d.q_heads + h] = mx[row] + std::log(sum[row]);
    } else {  // no visible key
      lse[(b * d.q_len + i) * d.q_heads + h] = -std::numeric_limits<T>::infinity();
    }
  }
  scatter_rows(acc, d, b, kvh, qb.i0, qb.i1, out);
}

// A backward task: query blocks [first, last) of one (batch, KV head), accumulating dk/dv for keys [keys.lo,
// keys.hi) into private rows at `offset` of the partial buffers.
struct BackwardRun {
  int64_t first, last;
  KeyRange keys;
  int64_t offset;  // in key rows, within one (batch, KV head)'s share of the partial buffers
  int64_t work;
};

// Groups consecutive query blocks into runs, doubling the run length until the private accumulators of all runs
// fit in kPartialBudget * k_len rows.
std::vector<BackwardRun> make_runs(const std::vector<QueryBlock>& blocks, int64_t k_len, int64_t& total_rows) {
  const int64_t n = int64_t(blocks.size());
  for (int64_t len = 1;; len *= 2) {
    std::vector<BackwardRun> runs;
    total_rows = 0;
    for (int64_t f = 0; f < n; f += len) {
      BackwardRun run{f, std::min(f + len, n), {0, 0}, 0, 0};
      bool any = false;
      for (int64_t qb = run.first; qb < run.last; ++qb) {
        const KeyRange r = blocks[size_t(qb)].keys;
        if (r.lo >= r.hi) continue;
        run.keys = any ? KeyRange{std::min(run.keys.lo, r.lo), std::max(run.keys.hi, r.hi)} : r;
        any = true;
        run.work += blocks[size_t(qb)].work;
      }
      run.offset = total_rows;
      total_rows += run.keys.hi - run.keys.lo;
      runs.push_back(run);
    }
    if (total_rows <= kPartialBudget * k_len || len >= n) return runs;
  }
}

template <class T>
void backward_block(const T* dout, const T* q, const T* k, const T* v, const T* out, const T* lse, T* dq, const SwaDims& d,
                    T scale, int64_t b, int64_t kvh, const QueryBlock& qb, int64_t key_base, T* pdk, T* pdv,
                    BlockScratch<T>& w) {
  const int64_t g = d.q_heads / d.kv_heads, dim = d.head_dim, nrows = qb.i1 - qb.i0, m_all = nrows * g;
  const int64_t ldk = d.kv_heads * dim;
  const T* kb = k + (b * d.k_len * d.kv_heads + kvh) * dim;
  const T* vb = v + (b * d.k_len * d.kv_heads + kvh) * dim;
  T *qs = w.qs, *dqs = w.acc, *dos = w.dos, *p = w.s, *ds = w.s2, *delta = w.row_a, *lr = w.row_b;
  for (int64_t r = 0; r < nrows; ++r) w.ranges[size_t(r)] = visible_keys(d, qb.i0 + r);

  gather_rows(q, d, b, kvh, qb.i0, qb.i1, qs);
  gather_rows(dout, d, b, kvh, qb.i0, qb.i1, dos);
  // delta = rowsum(dout * out), lr = lse; dqs (the gathered dq) starts at zero. The out rows go through dqs.
  gather_rows(out, d, b, kvh, qb.i0, qb.i1, dqs);
  for (int64_t row = 0; row < m_all; ++row) {
    delta[row] = dot(dos + row * dim, dqs + row * dim, dim);
    lr[row] = lse[(b * d.q_len + qb.i0 + row / g) * d.q_heads + kvh * g + row % g];
  }
  std::fill(dqs, dqs + m_all * dim, T(0));

  for (int64_t j0 = qb.keys.lo; j0 < qb.keys.hi; j0 += kKeyBlock) {
    const int64_t j1 = std::min(j0 + kKeyBlock, qb.keys.hi), nk = j1 - j0;
    auto [ra, rb] = rows_seeing(w.ranges.data(), nrows, j0, j1);
    if (ra >= rb) continue;  // rows with no visible key (lse = -inf) never get here
    const int64_t r0 = ra * g, m = (rb - ra) * g;
    gemm<T>(false, true, m, nk, dim, scale, qs + r0 * dim, dim, kb + j0 * ldk, ldk, T(0), p, kKeyBlock);
    gemm<T>(false, true, m, nk, dim, T(1), dos + r0 * dim, dim, vb + j0 * ldk, ldk, T(0), ds, kKeyBlock);
    for (int64_t r = ra; r < rb; ++r) {
      const KeyRange kr = w.ranges[size_t(r)];
      const int64_t c0 = std::max(kr.lo, j0) - j0, c1 = std::min(kr.hi, j1) - j0;
      for (int64_t hh = 0; hh < g; ++hh) {
        const int64_t row = r * g + hh;
        T* pr = p + (row - r0) * kKeyBlock;
        T* dr = ds + (row - r0) * kKeyBlock;
        exp_row(pr, nk, c0, c1, lr[row]);  // P = exp(s - lse), 0 where masked
        const T dl = delta[row];
        std::fill(dr, dr + c0, T(0));
        std::fill(dr + c1, dr + nk, T(0));
#pragma omp simd
        for (int64_t c = c0; c < c1; ++c) dr[c] = pr[c] * (dr[c] - dl);  // dS = P * (dP - delta)
      }
    }
    T* pdv_rows = pdv + (key_base + j0) * dim;
    T* pdk_rows = pdk + (key_base + j0) * dim;
    gemm<T>(true, false, nk, dim, m, T(1), p, kKeyBlock, dos + r0 * dim, dim, T(1), pdv_rows, dim);   // dv += P^T dO
    gemm<T>(true, false, nk, dim, m, scale, ds, kKeyBlock, qs + r0 * dim, dim, T(1), pdk_rows, dim);  // dk += dS^T q
    gemm<T>(false, false, m, dim, nk, scale, ds, kKeyBlock, kb + j0 * ldk, ldk, T(1), dqs + r0 * dim, dim);  // dq
  }
  scatter_rows(dqs, d, b, kvh, qb.i0, qb.i1, dq);
}

}  // namespace

template <class T>
void swa_forward(const T* q, const T* k, const T* v, T* out, T* lse, const SwaDims& d, double scale) {
  const int64_t g = d.q_heads / d.kv_heads, bq = query_block_rows(g);
  const std::vector<QueryBlock> blocks = make_query_blocks(d, bq);
  struct Task {
    int64_t b, kvh, block, work;
  };
  std::vector<Task> tasks;
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.kv_heads; ++h)
      for (int64_t i = 0; i < int64_t(blocks.size()); ++i) tasks.push_back({b, h, i, blocks[size_t(i)].work});
  sort_by_work(tasks);
  BlasSerialScope serial_blas;  // the GEMMs below run inside the parallel region, one thread each
#pragma omp parallel if (worth_parallel(tasks, g, d.head_dim))
  {
    BlockScratch<T> w(bq, g, d.head_dim);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < int64_t(tasks.size()); ++t) {
      const Task& task = tasks[size_t(t)];
      forward_block(q, k, v, out, lse, d, T(scale), task.b, task.kvh, blocks[size_t(task.block)], w);
    }
  }
}

template <class T>
void swa_backward(const T* dout, const T* q, const T* k, const T* v, const T* out, const T* lse, T* dq, T* dk, T* dv,
                  const SwaDims& d, double scale) {
  const int64_t g = d.q_heads / d.kv_heads, bq = query_block_rows(g), dim = d.head_dim;
  const std::vector<QueryBlock> blocks = make_query_blocks(d, bq);
  int64_t rows_per_head = 0;  // private accumulator rows per (batch, KV head)
  const std::vector<BackwardRun> runs = make_runs(blocks, d.k_len, rows_per_head);
  const int64_t heads = d.batch * d.kv_heads;
  // Partial dk and dv of every run: written only by its task (zeroed there first), read in the reduction.
  std::unique_ptr<T[]> pdk = scratch<T>(heads * rows_per_head * dim), pdv = scratch<T>(heads * rows_per_head * dim);

  struct Task {
    int64_t head, run, work;  // head = b * H + kvh
  };
  std::vector<Task> tasks;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t r = 0; r < int64_t(runs.size()); ++r) tasks.push_back({h, r, runs[size_t(r)].work});
  sort_by_work(tasks);
  BlasSerialScope serial_blas;
#pragma omp parallel if (worth_parallel(tasks, g, dim))
  {
    BlockScratch<T> w(bq, g, dim);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < int64_t(tasks.size()); ++t) {
      const Task& task = tasks[size_t(t)];
      const BackwardRun& run = runs[size_t(task.run)];
      const int64_t b = task.head / d.kv_heads, kvh = task.head % d.kv_heads;
      T* run_dk = pdk.get() + (task.head * rows_per_head + run.offset) * dim;
      T* run_dv = pdv.get() + (task.head * rows_per_head + run.offset) * dim;
      const int64_t run_rows = run.keys.hi - run.keys.lo;
      std::fill(run_dk, run_dk + run_rows * dim, T(0));
      std::fill(run_dv, run_dv + run_rows * dim, T(0));
      // key_base maps key row j to row j - keys.lo of the run's accumulators.
      for (int64_t qb = run.first; qb < run.last; ++qb)
        backward_block(dout, q, k, v, out, lse, dq, d, T(scale), b, kvh, blocks[size_t(qb)], -run.keys.lo, run_dk,
                       run_dv, w);
    }

    // dk[j], dv[j] = sum of the runs' partials, added in run order for every key.
    const int64_t key_blocks = (d.k_len + kKeyBlock - 1) / kKeyBlock;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < heads * key_blocks; ++t) {
      const int64_t head = t / key_blocks, j0 = (t % key_blocks) * kKeyBlock, j1 = std::min(j0 + kKeyBlock, d.k_len);
      const int64_t b = head / d.kv_heads, kvh = head % d.kv_heads;
      for (int64_t j = j0; j < j1; ++j) {
        std::fill_n(dk + ((b * d.k_len + j) * d.kv_heads + kvh) * dim, dim, T(0));
        std::fill_n(dv + ((b * d.k_len + j) * d.kv_heads + kvh) * dim, dim, T(0));
      }
      for (const BackwardRun& run : runs) {
        const int64_t a = std::max(j0, run.keys.lo), e = std::min(j1, run.keys.hi);
        for (int64_t j = a; j < e; ++j) {
          const int64_t off = (head * rows_per_head + run.offset + j - run.keys.lo) * dim;
          T* dkr = dk + ((b * d.k_len + j) * d.kv_heads + kvh) * dim;
          T* dvr = dv + ((b * d.k_len + j) * d.kv_heads + kvh) * dim;
          const T* sk = pdk.get() + off;
          const T* sv = pdv.get() + off;
#pragma omp simd
          for (int64_t c = 0; c < dim; ++c) {
            dkr[c] += sk[c];
            dvr[c] += sv[c];
          }
        }
      }
    }
  }
}

template void swa_forward<float>(const float*, const float*, const float*, float*, float*, const SwaDims&, double);
template void swa_forward<double>(const double*, const double*, const double*, double*, double*, const SwaDims&,
                                  double);
template void swa_backward<float>(const float*, const float*, const float*, const float*, const float*, const float*,
                                  float*, float*, float*, const SwaDims&, double);
template void swa_backward<double>(const double*, const double*, const double*, const double*, const double*,
                                   const double*, double*, double*, double*, const SwaDims&, double);

}  // namespace hsa::cpu

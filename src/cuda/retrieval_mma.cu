// The bf16 retrieval forward on the tensor cores (cuda/retrieval.h: RetrievalKernel::mma).
//
// Block = 128 query rows of one (b, h): 4 warps of 32 rows (two m16 tiles), the rows' Q fragments in registers.
// The landmarks the block's last row sees stream through shared memory in tiles of 64 (cp.async, double-buffered,
// cuda/mma_sync.cuh: pipeline); a warp scores its 32 rows against 32 landmarks at a time (mma.sync m16n8k16, bf16
// in, f32 accumulate: each B fragment serves both m16 tiles), scales, hides the chunks a row does not see (NaN:
// never selected), and offers the scores to a running top-K. Nothing of size L x C exists.
//
// The running top-K. In the accumulator layout a row's 32 scores of a step lie in the 4 lanes of its quad (lane
// tig holds columns 8j + 2tig, +1). Each lane keeps its own list per row (K entries, best first, in shared memory,
// entries 128 floats apart so the lanes of a warp hit distinct banks) of the chunks it was offered, ascending in
// chunk id: the CPU's streaming insertion with its ">=" tie rule (cpu/retrieval.cpp: offer_chunks). A score is
// offered only when it is >= the row's gate, the largest K-th score of the quad's four lists (exchanged by two
// shuffles after each 32-column step; -inf until a list is full). Why the four lists hold the row's exact top-K:
// every list is a subset of the row's chunks, so its K-th score is at most the row's final K-th score, and so is the
// gate; a chunk of the final top-K therefore always passes the gate (ties included: ">="), and in its lane's list at
// most K - 1 chunks come before it (they come before it in the row too), so it is never dropped. At the end thread
// r merges row r's four lists by the selection order (retrieval_select.cuh; chunk ids are distinct, so the order is
// strict and the result is the CPU's, bit for bit on ties), writes the slots and the weights.
//
// Cost: the gate check is one max over a lane's 8 scores per row and step; only a step where some score passes runs
// the insertions (a few per row after the first tiles: ~K (1 + ln(n / K)) per list over n offers in random order).
// Shared memory: Q [128][D + 8] (later the lists, 4 K KiB), the list lengths (2 KiB) and 2 landmark tiles
// [64][D + 8]: 70 KiB at D = 128, K = 8, where the kernel takes ~220 registers (Q fragments 64, accumulators 32;
// capped at 168 for three blocks per SM it spilled), so two blocks per SM; D = 64: 52 KiB, three.
//
// Few row tiles (fewer than two blocks per SM, e.g. a 4K-token prefill segment against a 1M-token memory) would
// leave most SMs idle while each block scans every landmark: then the chunks are split over blocks as well (at
// least 512 per block), each block writes its rows' best K over its chunks, and retrieval_merge_partials (the
// split path's merge, retrieval_split.cu) merges them; exact, since a row's top K lies in the union of its splits'.
#include "cuda/mma_sync.cuh"
#include "cuda/retrieval_select.cuh"

#include <algorithm>
#include <cmath>

namespace hsa::cuda::detail {

namespace {

constexpr int kWarps = 4, kThreads = 32 * kWarps;
constexpr int kRows = 32 * kWarps;  // query rows per block: two m16 tiles per warp
constexpr int kTile = 64;           // landmarks per shared-memory tile
constexpr int kStep = 32;           // landmarks per mma step: accumulators [2][4][4], 8 scores per lane and row
constexpr int kLaneRows = 4;        // rows of a lane: gid and gid + 8 of each m16 tile

using bf16_t = __nv_bfloat16;

template <int D> struct MmaLayout {
  static constexpr int LD = D + 8;  // bf16 per shared row (see mma_sync.cuh)
  static constexpr size_t q_bytes = size_t(kRows) * LD * 2;
  static constexpr size_t tile_bytes = size_t(kTile) * LD * 2;
  static constexpr size_t len_bytes = size_t(kLaneRows) * kThreads * 4;  // list lengths (i32)
  // Per lane and row: K scores (f32), K chunks (i32).
  static size_t list_bytes(int64_t K) { return size_t(kLaneRows) * kThreads * size_t(K) * 8; }
  static size_t lens_at(int64_t K) { return std::max(q_bytes, list_bytes(K)); }  // Q, then the lists
  static size_t tiles_at(int64_t K) { return lens_at(K) + len_bytes; }
  static size_t total(int64_t K) { return tiles_at(K) + 2 * tile_bytes; }
};

// Offers score s of chunk c (s >= gate) to a lane's list ls/lc (entries kThreads apart, best first, *len entries):
// the CPU's insertion, chunks arriving in ascending order, so ">=" puts a newcomer before the kept chunks of equal
// score. A full list raises the gate to its K-th score. (The length lives in shared memory: it is only needed
// here, and registers are what this kernel is short of.)
__device__ __forceinline__ void offer(float s, int32_t c, float* ls, int32_t* lc, int* len, int K, float& gate) {
  const int cnt = *len;
  int j = cnt < K ? cnt : K - 1;  // the free slot, or the dropped worst one
  if (cnt < K) *len = cnt + 1;
  for (; j > 0; --j) {
    const float prev = ls[(j - 1) * kThreads];
    if (!(s >= prev)) break;
    ls[j * kThreads] = prev;
    lc[j * kThreads] = lc[(j - 1) * kThreads];
  }
  ls[j * kThreads] = s;
  lc[j * kThreads] = c;
  if (cnt + 1 >= K) gate = fmaxf(gate, ls[(K - 1) * kThreads]);
}

// grid: row tiles * B * H * splits blocks, the tiles of the most rows (which see the most chunks) first. With
// splits > 1 block (tile, b, h, split) takes the chunks [split * split_chunks, + split_chunks) and writes its rows'
// best K to the partial lists part_s, part_c (retrieval_select.cuh: retrieval_merge_partials merges them).
template <int D>
__global__ void __launch_bounds__(kThreads, D <= 64 ? 3 : 2)
    retrieval_mma_kernel(const bf16_t* __restrict__ qr, const bf16_t* __restrict__ lm, int32_t* __restrict__ indices,
                         float* __restrict__ weights, float* __restrict__ scores, RetrievalDims d, float scale,
                         int64_t row_tiles, int tiles_at, int64_t splits, int64_t split_chunks,
                         float* __restrict__ part_s, int32_t* __restrict__ part_c) {
  using Layout = MmaLayout<D>;
  constexpr int LD = Layout::LD, KS = D / 16;
  extern __shared__ __align__(128) unsigned char smem[];
  const int K = int(d.topk);
  bf16_t* Qs = reinterpret_cast<bf16_t*>(smem);                              // [kRows][LD]
  float* list_s = reinterpret_cast<float*>(smem);                            // [kLaneRows][K][kThreads], after Q
  int32_t* list_c = reinterpret_cast<int32_t*>(list_s + kLaneRows * K * kThreads);
  bf16_t* Ls = reinterpret_cast<bf16_t*>(smem + tiles_at);                  // [2][kTile][LD]
  int* lens = reinterpret_cast<int*>(smem + tiles_at - Layout::len_bytes);  // [kLaneRows][kThreads]

  const int tid = threadIdx.x, warp = tid / 32, gid = tid % 32 / 4, tig = tid % 4;
  const int64_t pairs = d.batch * d.heads, split = blockIdx.x % splits, bh = blockIdx.x / splits % pairs;
  const int64_t b = bh / d.heads, h = bh % d.heads;
  const int64_t t0 = (row_tiles - 1 - blockIdx.x / (splits * pairs)) * kRows;
  const int64_t rows_end = std::min(d.seq_len, t0 + kRows);  // valid rows [t0, rows_end)
  // This block's chunks [c_begin, c_end): its split of those the last row (which sees the most) sees.
  const int64_t c_begin = split * split_chunks;
  const int64_t c_end = std::min(hsa::visible_chunks(d.q_start + rows_end - 1, d), c_begin + split_chunks);
  const int tiles = c_end > c_begin ? int((c_end - c_begin + kTile - 1) / kTile) : 0;
  const int64_t stride = d.heads * d.dim;  // between the rows of one head, in qr and in landmarks
  const bf16_t* q_base = qr + (b * d.seq_len * d.heads + h) * d.dim;    // row t at q_base + t * stride
  const bf16_t* l_base = lm + (b * d.chunks * d.heads + h) * d.dim;     // chunk c at l_base + c * stride

  // This lane's rows rs = 2 m + u: block row 32 warp + 16 m + 8 u + gid. Chunks it takes: [c_begin, nv) (nv is 0
  // past L, and at most c_end).
  auto visible = [&](int64_t t) { return int(std::min(hsa::visible_chunks(d.q_start + t, d), c_end)); };
  int nv[kLaneRows];
  float gate[kLaneRows];
#pragma unroll
  for (int rs = 0; rs < kLaneRows; ++rs) {
    const int64_t t = t0 + warp * 32 + 8 * rs + gid;  // 16 m + 8 u = 8 rs
    nv[rs] = t < d.seq_len ? visible(t) : 0;
    gate[rs] = -INFINITY;
    lens[rs * kThreads + tid] = 0;  // read by other threads only after the pipeline's barriers
  }
  // The warp's rows all take [c_begin, warp_lo) and some take [c_begin, warp_hi); a warp with padding rows masks
  // every step.
  const int64_t w0 = t0 + warp * 32, w1 = std::min(rows_end, w0 + 32);
  const int warp_hi = w1 > w0 ? visible(w1 - 1) : 0;
  const int warp_lo = w1 - w0 == 32 ? visible(w0) : 0;

  cp_async_rows<kRows, D, LD, kThreads>(
      Qs, q_base, [&](int r) -> int64_t { return t0 + r < rows_end ? (t0 + r) * stride : -1; }, int(d.dim));
  cp_async_commit();
  uint32_t qa[2][KS][4];
  pipeline(
      tiles,
      [&](int n, int buf) {
        cp_async_rows<kTile, D, LD, kThreads>(
            Ls + buf * kTile * LD, l_base,
            [&](int r) -> int64_t {
              const int64_t c = c_begin + int64_t(n) * kTile + r;
              return c < c_end ? c * stride : -1;
            },
            int(d.dim));
      },
      [&] {
#pragma unroll
        for (int m = 0; m < 2; ++m)
#pragma unroll
          for (int ks = 0; ks < KS; ++ks) ldmatrix_a<LD>(qa[m][ks], smem_addr(Qs + (warp * 32 + m * 16) * LD), ks);
      },
      [&](int n, int buf) {
        const int c0 = int(c_begin) + n * kTile;
        if (c0 >= warp_hi) return;  // none of the warp's rows sees this tile
        const uint32_t tile = smem_addr(Ls + buf * kTile * LD);
#pragma unroll 1
        for (int step = 0; step < kTile / kStep; ++step) {
          const int cb = c0 + step * kStep;
          if (cb >= warp_hi) break;
          float acc[2][kStep / 8][4] = {};
          mma_abt_tiles<2, kStep, D, LD>(acc, qa, tile + step * kStep * LD * 2);
          const bool mask = cb + kStep > warp_lo;
#pragma unroll
          for (int rs = 0; rs < kLaneRows; ++rs) {
            // Score i of this lane in row rs: chunk cb + 8 (i / 2) + 2 tig + i % 2, ascending in i.
            float s[kStep / 4];
            const int lim = nv[rs] - (cb + 2 * tig);  // chunk visible iff 8 (i / 2) + i % 2 < lim
#pragma unroll
            for (int i = 0; i < kStep / 4; ++i) {
              s[i] = acc[rs / 2][i / 2][(rs % 2) * 2 + i % 2] * scale;
              if (mask && 8 * (i / 2) + i % 2 >= lim) s[i] = __int_as_float(0x7fc00000);  // NaN: never selected
            }
            float top = s[0];  // fmaxf skips NaN; all NaN stays NaN and fails the gate
#pragma unroll
            for (int i = 1; i < kStep / 4; ++i) top = fmaxf(top, s[i]);
            if (top >= gate[rs]) {
              float* ls = list_s + rs * K * kThreads + tid;
              int32_t* lc = list_c + rs * K * kThreads + tid;
#pragma unroll
              for (int i = 0; i < kStep / 4; ++i)
                if (s[i] >= gate[rs]) offer(s[i], cb + 8 * (i / 2) + 2 * tig + i % 2, ls, lc, lens + rs * kThreads + tid, K, gate[rs]);
            }
          }
#pragma unroll
          for (int rs = 0; rs < kLaneRows; ++rs) {  // the quad's best K-th score bounds the row's
            gate[rs] = fmaxf(gate[rs], __shfl_xor_sync(0xffffffffu, gate[rs], 1));
            gate[rs] = fmaxf(gate[rs], __shfl_xor_sync(0xffffffffu, gate[rs], 2));
          }
        }
      });


  // The pipeline returned after a barrier that follows the last offer (or, without tiles, after one that follows
  // the zeroing of lens). Thread r ends block row r = 32 w + 8 rs + g: its entries are in the lists of lanes 32 w + 4 g + q, q < 4.
  const int64_t t = t0 + tid;
  if (t >= d.seq_len) return;
  const int rs = tid % 32 / 8, lane0 = warp * 32 + (tid % 8) * 4;
  const float* ls = list_s + rs * K * kThreads + lane0;
  const int32_t* lc = list_c + rs * K * kThreads + lane0;
  int head[4], len[4];
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    head[q] = 0;
    len[q] = lens[rs * kThreads + lane0 + q];
  }
  const int64_t row = (b * d.seq_len + t) * d.heads + h;  // of [B, L, H]
  const bool partial = splits > 1;
  int32_t* oc = partial ? part_c + (row * splits + split) * K : indices + row * K;
  float* os = partial ? part_s + (row * splits + split) * K : scores + row * K;
  int n = 0;
  for (; n < K; ++n) {  // merge by the selection order
    int best = -1;
    float bs = 0;
    int32_t bc = 0;
#pragma unroll
    for (int q = 0; q < 4; ++q)
      if (head[q] < len[q]) {
        const float s = ls[head[q] * kThreads + q];
        const int32_t c = lc[head[q] * kThreads + q];
        if (best < 0 || retrieval_before(s, c, bs, bc)) best = q, bs = s, bc = c;
      }
    if (best < 0) break;
#pragma unroll
    for (int q = 0; q < 4; ++q) head[q] += q == best;
    oc[n] = bc, os[n] = bs;
  }
  if (partial)
    for (int i = n; i < K; ++i) oc[i] = -1;
  else
    retrieval_finish_row(oc, os, weights + row * K, n, d.topk, d.stick_breaking);
}

template <int D>
void launch(const bf16_t* qr, const bf16_t* lm, int32_t* indices, float* weights, float* scores,
            const RetrievalDims& d, float scale) {
  const int64_t row_tiles = ceil_div(d.seq_len, kRows), blocks = row_tiles * d.batch * d.heads;
  if (blocks == 0) return;
  // Fewer row tiles than two per SM: the chunks are split over blocks too.
  const ChunkSplits plan = plan_chunk_splits(blocks, hsa::visible_chunks(d.q_start + d.seq_len - 1, d),
                                             2 * int64_t(sm_count()), kTile);
  const int64_t splits = plan.splits, split_chunks = plan.split_chunks;
  using Layout = MmaLayout<D>;
  const size_t smem = Layout::total(d.topk);
  HSA_CUDA_CHECK(
      cudaFuncSetAttribute(retrieval_mma_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int64_t n_part = splits > 1 ? d.batch * d.seq_len * d.heads * splits * d.topk : 0;
  DeviceBuffer<std::byte> part(int64_t(size_t(std::max<int64_t>(n_part, 1)) * 8));
  float* part_s = part.as<float>();
  int32_t* part_c = reinterpret_cast<int32_t*>(part_s + n_part);
  retrieval_mma_kernel<D><<<unsigned(blocks * splits), kThreads, smem, stream()>>>(
      qr, lm, indices, weights, scores, d, scale, row_tiles, int(Layout::tiles_at(d.topk)), splits, split_chunks,
      part_s, part_c);
  check_launch("retrieval_mma_kernel");
  if (splits > 1) retrieval_merge_partials(part_s, part_c, splits, indices, weights, scores, d);
}

}  // namespace

size_t retrieval_mma_smem(const RetrievalDims& d) {
  if (d.dim % 8 != 0 || d.dim > 128 || d.dim < 1) return 0;
  return d.dim <= 64 ? MmaLayout<64>::total(d.topk) : MmaLayout<128>::total(d.topk);
}

void retrieval_mma_forward(const bf16_t* qr, const bf16_t* landmarks, int32_t* indices, float* weights,
                           float* scores, const RetrievalDims& d, float scale) {
  if (d.dim <= 64) launch<64>(qr, landmarks, indices, weights, scores, d, scale);
  else launch<128>(qr, landmarks, indices, weights, scores, d, scale);
}

}  // namespace hsa::cuda::detail

// The bf16 retrieval forward on the tensor cores with one exact gate per query row (cuda/retrieval.h:
// RetrievalKernel::gated). The scores are the mma kernel's (retrieval_mma.cu: the same fragments, the same
// mma_abt_tiles calls, the same scale), bit for bit; what changes is how the running top-K is kept, and the block
// size. Why, and the arithmetic behind it: docs/architecture.md §5.5.
//
// Block = 256 query rows of one (b, h): 8 warps of 32 rows (two m16 tiles each), Q fragments in registers. The
// landmarks the block's last row sees stream through shared memory in tiles of 64 (cp.async, double-buffered,
// mma_sync.cuh: pipeline), read once per 256 rows (half the L2 traffic of 128-row blocks). A warp scores its 32
// rows against 32 landmarks per step (mma.sync m16n8k16, bf16 in, f32 accumulate).
//
// The running top-K: lane r of a warp owns the warp's row r, its list (K entries, best first, in shared memory,
// entries 32 apart: lanes hit distinct banks) and its gate, the list's K-th score (-inf until K are kept), held in a
// register and copied to the 4 lanes whose accumulators hold that row's scores after every merge. After each step:
//   fast path: per lane and row, the max of its 8 raw accumulators (the min for a negative scale) times the scale
//     is the max of its 8 scores (rounding is monotonic); one compare with the gate, one warp vote. Once a row has
//     seen a few hundred chunks almost every step ends here: the chance that a score enters a row's top K after n
//     chunks is K / n.
//   slow path (some lane of the warp has a score >= its row's gate): each lane writes the passing scores of its
//     hot rows to the warp's staging rows [32][64] (shared memory), and a 32-bit mask per (row, step, lane of the
//     quad) (zero for the other rows).
// After each 64-landmark tile with a slow step, the warp merges: lane r walks its row's mask bits (ascending chunk)
// and offers each staged score to its list with the CPU's streaming insertion (cpu/retrieval.cpp: offer_chunks; the
// chunks arrive in ascending order, so ">=" is the tie rule), then the new gates go back by 4 shuffles. Exact: a
// score below a gate that is at most the row's current K-th score is one the CPU's streaming insertion rejects too
// (its gate only rises), so the list is, entry for entry, the CPU's list over the same scores. Compared with the mma
// kernel (a list per lane, four per row, a gate bounded by the quad's best list, and inserts that serialise the warp
// on every step that offers anything), the gate is the row's own K-th score and the inserts of a tile cost the
// warp the longest row's inserts once.
//
// Shared memory (D = 128, K = 8): Q [256][D + 8] bf16, later the staging rows [8 warps][32][68] f32 (68 KiB, one
// region), masks [8][2][32][4] (8 KiB), lists 256 K 8 bytes (16 KiB), 2 landmark tiles [64][D + 8] (34 KiB):
// 126 KiB, one block of 8 warps per SM. D = 64: 110 KiB.
//
// Few row tiles (a prefill segment against a long memory) split the chunks over blocks as the mma kernel does
// (plan_chunk_splits, retrieval_select.cuh), and retrieval_merge_partials merges the partial lists.
#include "cuda/mma_sync.cuh"
#include "cuda/retrieval_select.cuh"

#include <algorithm>
#include <cmath>

namespace hsa::cuda::detail {

namespace {

constexpr int kWarps = 8, kThreads = 32 * kWarps;
constexpr int kRows = 32 * kWarps;  // query rows per block: two m16 tiles per warp
constexpr int kTile = 64;           // landmarks per shared-memory tile
constexpr int kStep = 32;           // landmarks per mma step: accumulators [2][4][4], 8 scores per lane and row
constexpr int kSteps = kTile / kStep;
constexpr int kLaneRows = 4;        // rows of a lane: gid and gid + 8 of each m16 tile
constexpr int kStageLD = kTile + 4;  // f32 per staged score row

using bf16_t = __nv_bfloat16;

template <int D> struct GatedLayout {
  static constexpr int LD = D + 8;  // bf16 per shared row (see mma_sync.cuh)
  static constexpr size_t q_bytes = size_t(kRows) * LD * 2;
  static constexpr size_t stage_bytes = size_t(kWarps) * 32 * kStageLD * 4;
  static constexpr size_t front = q_bytes > stage_bytes ? q_bytes : stage_bytes;  // Q, then the staged scores
  static constexpr size_t mask_bytes = size_t(kWarps) * kSteps * 32 * 4 * 4;     // [warp][step][row][tig]
  static constexpr size_t tile_bytes = size_t(kTile) * LD * 2;
  static constexpr size_t lists_at = front + mask_bytes;
  // Per row: K scores (f32), then per row K chunks (i32): [kWarps][K][32] each.
  __host__ __device__ static size_t list_bytes(int64_t K) { return size_t(kRows) * size_t(K) * 8; }
  __host__ __device__ static size_t tiles_at(int64_t K) { return lists_at + list_bytes(K); }
  __host__ __device__ static size_t total(int64_t K) { return tiles_at(K) + 2 * tile_bytes; }
};

// grid: row tiles * B * H * splits blocks, the tiles of the most rows (which see the most chunks) first; with
// splits > 1 block (tile, b, h, split) takes the chunks [split * split_chunks, + split_chunks) and writes its rows'
// best K to the partial lists part_s, part_c. kNeg: scale < 0 (the largest score comes from the smallest product).
template <int D, bool kNeg>
__global__ void __launch_bounds__(kThreads, 1)
    retrieval_gated_kernel(const bf16_t* __restrict__ qr, const bf16_t* __restrict__ lm,
                           int32_t* __restrict__ indices, float* __restrict__ weights, float* __restrict__ scores,
                           RetrievalDims d, float scale, int64_t row_tiles, int64_t splits, int64_t split_chunks,
                           float* __restrict__ part_s, int32_t* __restrict__ part_c) {
  using Layout = GatedLayout<D>;
  constexpr int LD = Layout::LD, KS = D / 16;
  extern __shared__ __align__(128) unsigned char smem[];
  const int K = int(d.topk);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gid = lane / 4, tig = lane % 4;
  bf16_t* Qs = reinterpret_cast<bf16_t*>(smem);                                          // [kRows][LD]
  float* stage = reinterpret_cast<float*>(smem) + warp * 32 * kStageLD;                  // [32][kStageLD], after Q
  uint32_t* masks = reinterpret_cast<uint32_t*>(smem + Layout::front) + warp * kSteps * 32 * 4;  // [step][row][tig]
  float* list_s = reinterpret_cast<float*>(smem + Layout::lists_at) + warp * K * 32 + lane;      // [K] 32 apart
  int32_t* list_c = reinterpret_cast<int32_t*>(smem + Layout::lists_at + size_t(kRows) * K * 4) + warp * K * 32 + lane;
  bf16_t* Ls = reinterpret_cast<bf16_t*>(smem + Layout::tiles_at(K));                    // [2][kTile][LD]

  const int64_t pairs = d.batch * d.heads, split = blockIdx.x % splits, bh = blockIdx.x / splits % pairs;
  const int64_t b = bh / d.heads, h = bh % d.heads;
  const int64_t t0 = (row_tiles - 1 - blockIdx.x / (splits * pairs)) * kRows;
  const int64_t rows_end = std::min(d.seq_len, t0 + kRows);  // valid rows [t0, rows_end)
  // This block's chunks [c_begin, c_end): its split of those the last row (which sees the most) sees.
  const int64_t c_begin = split * split_chunks;
  const int64_t c_end = std::min(hsa::visible_chunks(d.q_start + rows_end - 1, d), c_begin + split_chunks);
  const int tiles = c_end > c_begin ? int((c_end - c_begin + kTile - 1) / kTile) : 0;
  const int64_t stride = d.heads * d.dim;  // between the rows of one head, in qr and in landmarks
  const bf16_t* q_base = qr + (b * d.seq_len * d.heads + h) * d.dim;  // row t at q_base + t * stride
  const bf16_t* l_base = lm + (b * d.chunks * d.heads + h) * d.dim;   // chunk c at l_base + c * stride

  // The scoring side: this lane's rows rs = 2 m + u, warp row 16 m + 8 u + gid = 8 rs + gid, take the chunks
  // [c_begin, nv) (nv is 0 past L, and at most c_end).
  auto visible = [&](int64_t t) { return int(std::min(hsa::visible_chunks(d.q_start + t, d), c_end)); };
  int nv[kLaneRows];
  float gate[kLaneRows];
#pragma unroll
  for (int rs = 0; rs < kLaneRows; ++rs) {
    const int64_t t = t0 + warp * 32 + 8 * rs + gid;
    nv[rs] = t < d.seq_len ? visible(t) : 0;
    gate[rs] = -INFINITY;
  }
  // The list side: this lane's row is warp row `lane`; its list holds `count` entries, `kth` is its gate.
  int count = 0;
  float kth = -INFINITY;
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
        if (c0 >= warp_hi) return;  // none of the warp's rows sees this tile (warp-uniform)
        const uint32_t tile = smem_addr(Ls + buf * kTile * LD);
        int staged = 0;  // bit `step`: the step wrote masks (warp-uniform)
#pragma unroll 1
        for (int step = 0; step < kSteps; ++step) {
          const int cb = c0 + step * kStep;
          if (cb >= warp_hi) break;
          float acc[2][kStep / 8][4] = {};
          mma_abt_tiles<2, kStep, D, LD>(acc, qa, tile + step * kStep * LD * 2);
          const bool mask = cb + kStep > warp_lo;
          // Score i of this lane in row rs: acc[rs / 2][i / 2][(rs % 2) * 2 + i % 2], chunk cb + col(i) with
          // col(i) = 8 (i / 2) + 2 tig + i % 2, visible iff 8 (i / 2) + i % 2 < nv[rs] - (cb + 2 tig).
          // The best of a lane's 8 scores of row rs, from the raw products; masked ones (only near the diagonal:
          // a warp-uniform branch) are NaN, which fmaxf / fminf skip; all NaN fails the gate.
          auto best = [&](int rs, bool masked) {
            const int lim = nv[rs] - (cb + 2 * tig);
            float top = __int_as_float(0x7fc00000);
#pragma unroll
            for (int i = 0; i < kStep / 4; ++i) {
              float a = acc[rs / 2][i / 2][(rs % 2) * 2 + i % 2];
              if (masked && 8 * (i / 2) + i % 2 >= lim) a = __int_as_float(0x7fc00000);
              top = kNeg ? fminf(top, a) : fmaxf(top, a);
            }
            return top * scale;
          };
          bool hot[kLaneRows];
          if (mask) {
#pragma unroll
            for (int rs = 0; rs < kLaneRows; ++rs) hot[rs] = best(rs, true) >= gate[rs];
          } else {
#pragma unroll
            for (int rs = 0; rs < kLaneRows; ++rs) hot[rs] = best(rs, false) >= gate[rs];
          }
          if (!__any_sync(0xffffffffu, hot[0] || hot[1] || hot[2] || hot[3])) continue;
          staged |= 1 << step;
          // Only a lane's hot rows look at their 8 scores (usually one row of one lane in the warp).
#pragma unroll
          for (int rs = 0; rs < kLaneRows; ++rs) {
            const int r = 8 * rs + gid;
            uint32_t bits = 0;
            if (hot[rs]) {
              const int lim = nv[rs] - (cb + 2 * tig);
#pragma unroll
              for (int i = 0; i < kStep / 4; ++i) {
                const int col = 8 * (i / 2) + 2 * tig + i % 2;
                const float s = acc[rs / 2][i / 2][(rs % 2) * 2 + i % 2] * scale;
                if ((!mask || 8 * (i / 2) + i % 2 < lim) && s >= gate[rs]) {
                  stage[r * kStageLD + step * kStep + col] = s;
                  bits |= 1u << col;
                }
              }
            }
            masks[(step * 32 + r) * 4 + tig] = bits;
          }
        }
        if (!staged) return;
        __syncwarp();
        // Lane `lane` merges its row: the staged scores in ascending chunk order, the CPU's insertion.
#pragma unroll 1
        for (int step = 0; step < kSteps; ++step) {
          if (!(staged >> step & 1)) continue;
          const uint4 w = *reinterpret_cast<const uint4*>(masks + (step * 32 + lane) * 4);
          uint32_t bits = w.x | w.y | w.z | w.w;
          while (bits) {
            const int col = __ffs(int(bits)) - 1;
            bits &= bits - 1;
            const float s = stage[lane * kStageLD + step * kStep + col];
            if (!(s >= kth)) continue;  // the gate rose since the score was staged
            int j = count < K ? count++ : K - 1;  // the free slot, or the dropped worst one
            for (; j > 0; --j) {
              const float prev = list_s[(j - 1) * 32];
              if (!(s >= prev)) break;
              list_s[j * 32] = prev;
              list_c[j * 32] = list_c[(j - 1) * 32];
            }
            list_s[j * 32] = s;
            list_c[j * 32] = c0 + step * kStep + col;
            if (count == K) kth = list_s[(K - 1) * 32];
          }
        }
#pragma unroll
        for (int rs = 0; rs < kLaneRows; ++rs) gate[rs] = __shfl_sync(0xffffffffu, kth, 8 * rs + gid);
        // The next writes to stage and masks follow the pipeline's block barrier.
      });

  // The pipeline returned after a barrier; thread tid holds block row tid's list (warp row `lane`).
  const int64_t t = t0 + tid;
  if (t >= d.seq_len) return;
  const int64_t row = (b * d.seq_len + t) * d.heads + h;  // of [B, L, H]
  const bool partial = splits > 1;
  int32_t* oc = partial ? part_c + (row * splits + split) * K : indices + row * K;
  float* os = partial ? part_s + (row * splits + split) * K : scores + row * K;
  for (int n = 0; n < count; ++n) oc[n] = list_c[n * 32], os[n] = list_s[n * 32];
  if (partial)
    for (int i = count; i < K; ++i) oc[i] = -1;
  else
    retrieval_finish_row(oc, os, weights + row * K, count, d.topk, d.stick_breaking);
}

template <int D, bool kNeg>
void launch_as(const bf16_t* qr, const bf16_t* lm, int32_t* indices, float* weights, float* scores,
               const RetrievalDims& d, float scale) {
  const int64_t row_tiles = ceil_div(d.seq_len, kRows), blocks = row_tiles * d.batch * d.heads;
  if (blocks == 0) return;
  const ChunkSplits plan = plan_chunk_splits(blocks, hsa::visible_chunks(d.q_start + d.seq_len - 1, d),
                                             2 * int64_t(sm_count()), kTile);
  const size_t smem = GatedLayout<D>::total(d.topk);
  HSA_CUDA_CHECK(
      cudaFuncSetAttribute(retrieval_gated_kernel<D, kNeg>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int64_t n_part = plan.splits > 1 ? d.batch * d.seq_len * d.heads * plan.splits * d.topk : 0;
  DeviceBuffer<std::byte> part(int64_t(size_t(std::max<int64_t>(n_part, 1)) * 8));
  float* part_s = part.as<float>();
  int32_t* part_c = reinterpret_cast<int32_t*>(part_s + n_part);
  retrieval_gated_kernel<D, kNeg><<<unsigned(blocks * plan.splits), kThreads, smem, stream()>>>(
      qr, lm, indices, weights, scores, d, scale, row_tiles, plan.splits, plan.split_chunks, part_s, part_c);
  check_launch("retrieval_gated_kernel");
  if (plan.splits > 1) retrieval_merge_partials(part_s, part_c, plan.splits, indices, weights, scores, d);
}

template <int D>
void launch(const bf16_t* qr, const bf16_t* lm, int32_t* indices, float* weights, float* scores,
            const RetrievalDims& d, float scale) {
  if (scale < 0) launch_as<D, true>(qr, lm, indices, weights, scores, d, scale);
  else launch_as<D, false>(qr, lm, indices, weights, scores, d, scale);
}

}  // namespace

size_t retrieval_gated_smem(const RetrievalDims& d) {
  if (d.dim % 8 != 0 || d.dim > 128 || d.dim < 1) return 0;
  return d.dim <= 64 ? GatedLayout<64>::total(d.topk) : GatedLayout<128>::total(d.topk);
}

void retrieval_gated_forward(const bf16_t* qr, const bf16_t* landmarks, int32_t* indices, float* weights,
                             float* scores, const RetrievalDims& d, float scale) {
  if (d.dim <= 64) launch<64>(qr, landmarks, indices, weights, scores, d, scale);
  else launch<128>(qr, landmarks, indices, weights, scores, d, scale);
}

}  // namespace hsa::cuda::detail

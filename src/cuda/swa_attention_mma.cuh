// Shared pieces of the bf16 register kernels of the sliding-window attention (swa_attention_fwd_mma.cu,
// swa_attention_bwd_mma.cu): tile sizes, shared memory, row and key ranges, tile loads, masks.
#pragma once
#include "cuda/swa_attention_kernels.cuh"
#include "cuda/mma_sync.cuh"

namespace hsa::cuda::swa_attn {

// ---- bf16 register kernels (FlashAttention-2 style): mma.sync m16n8k16, ldmatrix, cp.async ----
// Why two sets of kernels: the WMMA kernels (swa_attention_fwd.cu, swa_attention_bwd.cu) keep their accumulators
// in shared memory and meet at a block barrier for every product, which held the bf16 forward far below the
// tensor-core peak. They stay as the f32 path (exact CUDA-core products, the 1e-5 parity) and as the bf16 fallback
// for shapes the register kernels do not take (register_path). The register kernels keep scores, probabilities
// and accumulators in registers (warp-tile helpers of cuda/mma_sync.cuh); the only block barriers are the two per
// tile of the cp.async pipeline.
//
// Rows of a KV group: the G = HQ / H query heads of KV head kvh read the same keys, so these kernels treat them as
// one matrix of Lq * G rows, row R = token R / G of query head kvh * G + R % G (the G heads of a token are adjacent
// in memory, as in the HSA kernels). A K/V tile in shared memory then serves all G heads, and a warp's 16 rows span
// only ceil(15 / G) + 1 tokens, so its key range is hardly wider than one token's window.
//
// Forward and dq: block = 128 rows of group (b, kvh), warp w = rows [16w, 16w + 16), Q (and dO) fragments in
// registers where they fit (RowsA). Key tiles of 64, double-buffered, aligned to the end of the keys the block sees
// (for G = 1 the causal diagonal then falls on tile edges). A warp skips tiles its rows do not see and masks only
// tiles that some of its rows see in part (causal diagonal, window start, sequence ends). Online softmax in the
// log2 domain. dk/dv: block = 64 keys of (b, kvh), warp w = keys [16w, 16w + 16) with its K, V fragments (RowsA);
// it walks the rows (all G heads) that see the block's keys in tiles of 64, double-buffered, in row order, so the
// GQA sum has a fixed order (deterministic, no atomics). P and dS are recomputed in registers from lse and delta.
//
// Work at base-100m (B 4, L 4096, HQ 12, H 2, D 64, W 512): 94.4 M visible (query, key) pairs over all heads.
// Forward 4 D per pair = 24.2 GFLOP (~27 executed: a warp's 64-key tiles cover ~576 keys for 512 seen), dq 6 D =
// 36.2 GFLOP, dk/dv 8 D = 48.3 GFLOP. HBM: ~60 MB per forward (~13 us at 4.8 TB/s), ~200 MB per backward with the
// delta kernel (~42 us), so all three are bound by mma.sync throughput. K/V tiles come from L2 once per block of 128
// rows (~230 MB of L2 reads per forward or dq call, ~500 MB of Q/dO tiles per dk/dv call).
constexpr int kMmaWarps = 8, kMmaThreads = 32 * kMmaWarps;
constexpr int kRowTile = 16 * kMmaWarps, kKeyTile = 64;  // forward and dq: rows per block, keys per tile
// dk/dv: 4 warps, keys per block, rows per tile. 64 keys per block rather than 128 doubles the blocks for small
// batches (B 1, H 2, L 4K: 128 blocks) and lets a warp idle on fewer of its block's row tiles (~6% of them instead
// of ~15% at base-100m shapes), for twice the L2 reads of Q and dO; two blocks fit an SM.
constexpr int kDkvWarps = 4, kDkvThreads = 32 * kDkvWarps, kDkvKeys = 16 * kDkvWarps, kDkvRows = 64;

// Shared memory (bytes), rows of D + 8 bf16 (see mma_sync.cuh).
template <int D> struct MmaSmem {
  static constexpr size_t row = size_t(D + 8) * 2;
  static constexpr size_t fwd = (kRowTile + 4 * kKeyTile) * row;     // Q; K, V x 2 buffers
  static constexpr size_t dq = (2 * kRowTile + 4 * kKeyTile) * row;  // Q, dO; K, V x 2 buffers
  // K, V; Q, dO x 2 buffers; lse, delta (f32) and key spans (2 x i32) per row x 2 buffers.
  static constexpr size_t dkv = (2 * kDkvKeys + 4 * kDkvRows) * row + 2 * kDkvRows * 16;
};

struct Span {
  int lo, hi;  // [lo, hi)
};

__device__ __forceinline__ int clamp_to(long long x, int hi) { return int(x < 0 ? 0 : x > hi ? hi : x); }
// Keys that some token of [t0, t1] sees, keys that all of them see, and tokens that see some key of [k0, k1].
__device__ __forceinline__ Span keys_any(const Dims& d, int t0, int t1) {
  return {clamp_to(t0 + d.rel - d.window + 1, d.k_len), clamp_to(t1 + d.rel + 1, d.k_len)};
}
__device__ __forceinline__ Span keys_all(const Dims& d, int t0, int t1) {
  return {clamp_to(t1 + d.rel - d.window + 1, d.k_len), clamp_to(t0 + d.rel + 1, d.k_len)};
}
__device__ __forceinline__ Span tokens_any(const Dims& d, int k0, int k1) {
  return {clamp_to(k0 - d.rel, d.q_len), clamp_to(k1 - d.rel + d.window, d.q_len)};
}

// The Lq * G rows of group (b, kvh).
struct GroupRows {
  long long base;          // index of row 0 in [B, Lq, HQ]
  int group, skip, count;  // G, HQ - G, Lq * G
  __device__ GroupRows(const Dims& d, int b, int kvh)
      : base((long long)b * d.q_len * d.q_heads + (long long)kvh * (d.q_heads / d.kv_heads)),
        group(d.q_heads / d.kv_heads),
        skip(d.q_heads - d.q_heads / d.kv_heads),
        count(d.q_len * (d.q_heads / d.kv_heads)) {}
  __device__ int token(int r) const { return r / group; }
  // Row r's index in [B, Lq, HQ] (lse, delta; times D: q, out, dout, dq).
  __device__ long long index(int r) const { return base + r + (long long)token(r) * skip; }
};

// Where the forward and dq kernels stand: block = (row tile, kvh, b), this warp's rows and this lane's two rows.
struct QueryTile {
  GroupRows rows;
  int r0, rw;               // first row of the block, of the warp
  int tiles, keys_end;      // key tile n covers keys [keys_end - 64 (tiles - n), + 64)
  Span warp_any, warp_all;  // keys some / every valid row of the warp sees
  int lane_tok[2];          // tokens of this lane's rows rw + gid, rw + gid + 8 (rows of its C fragments)
  long long kv_off;         // element offset of (b, key 0, kvh) in k and v

  __device__ QueryTile(const Dims& d, int D) : rows(d, blockIdx.z, blockIdx.y) {
    const int warp = threadIdx.x / 32, gid = threadIdx.x % 32 / 4;
    r0 = blockIdx.x * kRowTile;
    rw = r0 + 16 * warp;
    const Span keys = keys_any(d, rows.token(r0), rows.token(min(r0 + kRowTile, rows.count) - 1));
    keys_end = keys.hi;
    tiles = keys.hi > keys.lo ? (keys.hi - keys.lo + kKeyTile - 1) / kKeyTile : 0;
    warp_any = warp_all = Span{0, 0};
    if (rw < rows.count) {
      const int t0 = rows.token(rw), t1 = rows.token(min(rw + 16, rows.count) - 1);
      warp_any = keys_any(d, t0, t1);
      warp_all = keys_all(d, t0, t1);
    }
    // Padding rows (past count) get their would-be token: they are never stored.
    for (int h = 0; h < 2; ++h) lane_tok[h] = rows.token(rw + gid + 8 * h);
    kv_off = ((long long)blockIdx.z * d.k_len * d.kv_heads + blockIdx.y) * D;
  }
  __device__ int start(int n) const { return keys_end - kKeyTile * (tiles - n); }
  __device__ bool active(int j0) const { return j0 < warp_any.hi && j0 + kKeyTile > warp_any.lo; }
  __device__ bool full(int j0) const { return warp_all.lo <= j0 && j0 + kKeyTile <= warp_all.hi; }
  __device__ bool has_rows() const { return rw < rows.count; }
  // This warp's [16][D] f32 tile (C fragments; row gid times f0, gid + 8 times f1) to its rows of dst
  // [B, Lq, HQ, D], through the staging buffer stage [16][D + 8].
  template <int D>
  __device__ void store(const float (&c)[D / 8][4], float f0, float f1, bf16_t* stage, bf16_t* dst) const {
    store_rows<D, D + 8>(c, f0, f1, stage, [&](int r) -> bf16_t* {
      const int R = rw + r;
      return R < rows.count ? dst + rows.index(R) * D : nullptr;
    });
  }
};

// Rows [r0, r0 + ROWS) of a group into dst [ROWS][D + 8]; rows at or past `end` as zeros.
template <int ROWS, int D, int THREADS>
__device__ __forceinline__ void load_group_rows(bf16_t* dst, const bf16_t* src, const GroupRows& rows, int r0,
                                                int end) {
  cp_async_rows<ROWS, D, D + 8, THREADS>(dst, src, [&](int r) -> long long {
    const int R = r0 + r;
    return R < end ? rows.index(R) * D : -1;
  });
}

// Key tile n of the forward and dq kernels into buffer buf of kvs [2][K, V][64][D + 8]; keys outside [0, Lk) as
// zeros (the first tile may start before key 0).
template <int D>
__device__ __forceinline__ void load_key_tile(bf16_t* kvs, const bf16_t* k, const bf16_t* v, const QueryTile& qt,
                                              const Dims& d, int n, int buf) {
  constexpr int LD = D + 8;
  const int j0 = qt.start(n);
  const long long stride = (long long)d.kv_heads * D;
  auto off = [&](int r) -> long long {
    const int j = j0 + r;
    return j >= 0 && j < d.k_len ? j * stride : -1;
  };
  bf16_t* dst = kvs + buf * 2 * kKeyTile * LD;
  cp_async_rows<kKeyTile, D, LD, kMmaThreads>(dst, k + qt.kv_off, off);
  cp_async_rows<kKeyTile, D, LD, kMmaThreads>(dst + kKeyTile * LD, v + qt.kv_off, off);
}

// Sets the entries of this lane's C fragments of a [16][64] score tile at keys [j0, j0 + 64) that its rows (tokens
// lane_tok) do not see to `value`.
__device__ __forceinline__ void mask_keys(float (&s)[kKeyTile / 8][4], const Dims& d, const int (&lane_tok)[2],
                                          int j0, float value) {
  const int tig = threadIdx.x % 4;
  int lo[2], hi[2];  // relative to this lane's first column 2 tig
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const Span keys = keys_any(d, lane_tok[h], lane_tok[h]);
    lo[h] = keys.lo - j0 - 2 * tig;
    hi[h] = keys.hi - j0 - 2 * tig;
  }
#pragma unroll
  for (int n = 0; n < kKeyTile / 8; ++n)
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int c = 8 * n + (u & 1);
      if (c < lo[u / 2] || c >= hi[u / 2]) s[n][u] = value;
    }
}


// Whether the register kernels take these dims: rows of a group and keys as int with room for a tile, and the
// kernel's shared memory on this device.
inline bool register_path(const Dims& d, size_t smem) {
  const long long rows = (long long)d.q_len * (d.q_heads / d.kv_heads);
  return rows < (1LL << 31) - kRowTile && d.k_len < (1LL << 31) - 2 * kDkvKeys &&
         smem <= size_t(max_smem_optin());
}

inline unsigned row_tiles(const Dims& d) {
  return unsigned(ceil_div((long long)d.q_len * (d.q_heads / d.kv_heads), kRowTile));
}
}  // namespace hsa::cuda::swa_attn

// The sizes the attention (HSA, sliding-window, block), retrieval and MoE kernels take, and the index rules that
// every implementation of them must agree on, in one place (docs/architecture.md §4.3): the ops fill these structs,
// the CPU and CUDA kernels read them, and the benchmarks and FLOP counts apply the same rules. Plain C++ with no
// dependencies; the rules are HSA_HOST_DEVICE so CUDA kernels call this very code.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define HSA_HOST_DEVICE __host__ __device__
#else
#define HSA_HOST_DEVICE
#endif

namespace hsa {

// HSA chunk attention (ops/hsa_attention.h): B, L, HQ, H, D, C, S, K.
struct HsaDims {
  int64_t batch = 0, len = 0, q_heads = 0, kv_heads = 0, head_dim = 0, chunks = 0, chunk_size = 0, topk = 0;
  HSA_HOST_DEVICE int64_t group() const { return q_heads / kv_heads; }  // G: query heads per KV head
};

// HSA retrieval (ops/retrieval.h).
struct RetrievalDims {
  int64_t batch = 0, seq_len = 0, chunks = 0, heads = 0, dim = 0;  // B, L, C, H, dr
  int64_t chunk_size = 0, topk = 0, window = 0, q_start = 0;       // S, K, W, absolute position of row 0
  bool stick_breaking = false;                                      // else softmax
};

// Sliding-window attention (ops/swa_attention.h). Query row i (absolute position q_start + i) of head h sees key
// row j (position k_start + j) of KV head h / (HQ / H) iff 0 <= (q_start + i) - (k_start + j) < window.
struct SwaDims {
  int64_t batch, q_len, k_len, q_heads, kv_heads, head_dim;
  int64_t window;  // >= 1
  int64_t q_start, k_start;
};

// Full attention inside independent blocks, the chunk encoder's (ops/block_attention.h): N, T, H, D.
struct BlockAttentionDims {
  int64_t blocks, block_len, heads, head_dim;
};

// Mixture of experts (ops/moe.h): N tokens, width dm, E routed experts of width F, top-k, NS shared experts of
// width Fs.
struct MoeDims {
  int64_t n = 0, dm = 0, num_experts = 0, ffn = 0, topk = 0, num_shared = 0, ffn_shared = 0;
  int64_t entries() const { return n * topk; }  // routed (token, expert) pairs
  // Length of each saved pre-activation buffer: the routed entries' rows of F, then NS * N rows of Fs.
  int64_t act_elements() const { return n * topk * ffn + num_shared * n * ffn_shared; }
};

// How many chunks a query at absolute position `pos` may retrieve (docs/architecture.md §2.5 step 1). They are
// always a prefix [0, n) of the memory: chunk c is complete, (c+1)*S <= pos; when window W > 0 it does not lie
// wholly inside the SWA window, c*S <= pos - W; and c < chunks (the chunks that exist).
HSA_HOST_DEVICE inline int64_t visible_chunks(int64_t pos, int64_t chunk_size, int64_t window, int64_t chunks) {
  int64_t n = pos / chunk_size;
  if (window > 0) {
    const int64_t outside_window = pos < window ? 0 : (pos - window) / chunk_size + 1;
    n = n < outside_window ? n : outside_window;
  }
  n = n < chunks ? n : chunks;
  return n > 0 ? n : 0;
}

HSA_HOST_DEVICE inline int64_t visible_chunks(int64_t pos, const RetrievalDims& d) {
  return visible_chunks(pos, d.chunk_size, d.window, d.chunks);
}

}  // namespace hsa

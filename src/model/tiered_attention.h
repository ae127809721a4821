// The HSA chunk attention over a tiered chunk memory (docs/architecture.md "Chunk memory tiers"). After retrieval
// has chosen each token's chunks, the chunks selected anywhere in the segment (across tokens and heads, each once)
// are gathered into compact buffers, the indices are renumbered into them, and ops::hsa_attention_forward runs on
// those: each (token, head, slot) reads the same keys and values as with the whole memory, so the output is
// bit-identical. When the segment selects more than staging_pages chunks it is cut into pieces of consecutive
// tokens that each select at most that many (one token selects at most H * K); the next piece's pages are
// fetched while the current one computes.
#pragma once
#include "model/chunk_memory.h"
#include "ops/hsa_attention.h"

namespace hsa {

class TieredAttention {
 public:
  // indices i32 [1, n, H, K] from the retrieval op. Starts fetching the first piece's pages at once, so the copies
  // overlap whatever the caller computes before forward() (the query projection).
  TieredAttention(const ChunkMemory& memory, const Tensor& indices);
  // q [1, n, HQ, D], weights [1, n, H, K]: returns out [1, n, HQ, D] as hsa_attention_forward's .out.
  Tensor forward(const Tensor& q, const Tensor& weights, double scale);
  int64_t pieces() const { return static_cast<int64_t>(pieces_.size()); }

 private:
  struct Piece {
    int64_t begin = 0, end = 0;   // tokens
    std::vector<int32_t> chunks;  // sorted, distinct
    Tensor local;                 // i32 [1, end - begin, H, K]: indices into `chunks` (-1 stays -1)
  };
  const ChunkMemory& memory_;
  std::vector<Piece> pieces_;
  FetchedPages next_;
};

}  // namespace hsa

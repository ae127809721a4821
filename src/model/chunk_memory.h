// The HSA chunk memory (docs/architecture.md §2.4): per complete chunk its keys and values (NoPE) and its landmark.
// Built once from the hidden state after the lower layers and read by every HSA layer above.
// Append-only: a chunk is written once, when its last token has been seen. Storage grows by doubling, so
// decoding appends in amortised O(1) and views stay contiguous (B = 1 when decoding).
//
// Copies are cheap and independent: a copy shares the buffers (the chunks already written never change), and
// an append writes in place only when no other copy has written past this copy's end (copy-on-append), else it
// moves this copy's chunks to a new buffer first. So a state can be kept, copied and cut back (truncate) to
// resume from a prefix without copying the chunk memory (docs/serve.md).
//
// Tiers (inference only, batch 1; docs/architecture.md "Chunk memory tiers"): with set_tiers(), only the K/V pages
// of the first chunks that fit the device budget stay in the buffers; the later ones go to SpilledPages (host
// memory, then disk). Landmarks always stay. The HSA layer then reads pages through fetch() instead of mem_k() /
// mem_v(). A copy that appends where another copy already wrote forks the spilled pages too (a new store holding
// copies of its own pages), so copies stay independent whatever tier their chunks are in.
#pragma once
#include "model/chunk_encoder.h"
#include "model/layer_context.h"
#include "model/memory_tiers.h"
#include "model/spilled_pages.h"
#include "tensor/device_memory.h"

#include <atomic>
#include <memory>

namespace hsa {

// Pages gathered for one attention call: k, v [1, U, S, H, D] where the model runs, page u = chunk chunks[u].
struct FetchedPages {
  Tensor k, v;
  std::vector<int32_t> chunks;
  SideCopies copied;  // wait() orders the compute stream after these copies
  void wait() { wait_side_copies(copied); }  // before the first kernel that reads k or v
};

// Bytes and pages per tier, now.
struct TierUsage {
  int64_t device_pages = 0, host_pages = 0, disk_pages = 0;
  size_t device_bytes = 0, host_bytes = 0, disk_bytes = 0;  // K/V pages (device: the buffers' capacity)
  size_t landmark_bytes = 0, cache_bytes = 0;
  TierStats stats;
};

class ChunkMemory {
 public:
  int64_t num_chunks() const { return chunks_; }
  // Views of the complete chunks: mem_k, mem_v [B, C, S, H, D]; landmarks [B, C, H, dr/H]. When some pages are
  // spilled (not fully_resident()), mem_k and mem_v gather every page into new tensors: correct but costly (for
  // saving a state); the HSA layer fetches only what it selected instead.
  Tensor mem_k() const;
  Tensor mem_v() const;
  Tensor landmarks() const;
  void append(const Tensor& mem_k, const Tensor& mem_v, const Tensor& landmarks);

  // Chooses the tiers for this memory's pages; only before the first append. Tiers need batch 1.
  void set_tiers(const MemoryTiers& tiers);
  const MemoryTiers& tiers() const { return tiers_; }
  // Every chunk's pages are in the buffers (mem_k()/mem_v() are plain views).
  bool fully_resident() const { return !spill_ || chunks_ <= resident_cap_; }
  // Copies the pages of `chunks` (each in [0, num_chunks()), any order) into new compact buffers, in that order.
  FetchedPages fetch(std::vector<int32_t> chunks) const;
  TierUsage usage() const;
  // Keeps the first `chunks` chunks (at most num_chunks()); the buffers stay shared with other copies.
  void truncate(int64_t chunks);
  // A memory over existing buffers holding exactly their chunks (axis 1), e.g. views of a loaded state file.
  static ChunkMemory adopt(Tensor mem_k, Tensor mem_v, Tensor landmarks);
  size_t bytes() const;  // the buffers' capacity plus the spilled pages (host and disk)

 private:
  Tensor k_, v_, lmk_;  // capacity buffers (k_, v_ hold at most resident_cap_ chunks)
  int64_t chunks_ = 0;
  MemoryTiers tiers_;
  int64_t resident_cap_ = std::numeric_limits<int64_t>::max();  // chunks whose pages stay in k_, v_
  std::shared_ptr<SpilledPages> spill_;                           // page i = chunk resident_cap_ + i
  // Chunks written into these buffers by any copy: an append at chunks_ owns the tail only when it equals this.
  std::shared_ptr<std::atomic<int64_t>> written_;
};

// Tokens of the current, incomplete chunk: their normalised hidden states and keys/values wait here until the
// chunk completes. With the chunk encoder a token's key and value depend on its whole chunk, so only the
// normalised states wait (pending_k and pending_v stay empty) and the chunk is encoded when it completes.
struct MemoryState {
  ChunkMemory memory;
  Tensor pending_hn;  // [B, p, dm]
  Tensor pending_k;   // [B, p, H, D]; mean pooling only
  Tensor pending_v;   // [B, p, H, D]; mean pooling only
  int64_t pending() const { return pending_hn.defined() ? pending_hn.dim(1) : 0; }
};

struct MemoryBuildCache {
  Tensor h, hn, hn_rstd, k_raw, k_rstd, pooled;
  Tensor lmk_raw, lmk_rstd;  // the landmarks before landmark_norm, and its 1/rms (hsa_retrieval_norm)
  int64_t num_chunks = 0;
  // Chunk encoder only: its cache, its token outputs [B, C*S, dm] (what k/v are projected from), the landmark's
  // input [B, C, dm] (cls_out: the [CLS] outputs, or with chunk_encoder_landmark "mean" the chunk means of the token
  // outputs) and its landmark norm (pooled then holds the normed input).
  ChunkEncoderCache encoder;
  Tensor tokens, cls_out, cls_rstd;
};

struct MemoryGrads {
  Tensor dmem_k, dmem_v, dlandmarks;  // like the memory views; accumulated over HSA layers
  void add(const Tensor& dk, const Tensor& dv, const Tensor& dl);
};

// Projects h [B, n, dm] (positions after the ones already in `state`) into chunk keys/values, and appends
// every chunk that completes. With `cache`, keeps what the backward needs (training: state must be empty).
void memory_build_forward(const LayerContext& ctx, const Tensor& h, MemoryState& state, MemoryBuildCache* cache);

// Gradient into h from the gradients of the memory built from it.
Tensor memory_build_backward(const LayerContext& ctx, const MemoryBuildCache& cache, const MemoryGrads& grads,
                             TensorMap& param_grads);

}  // namespace hsa

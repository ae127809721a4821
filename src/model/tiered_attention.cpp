#include "model/tiered_attention.h"

#include "ops/shape_ops.h"

#include <algorithm>
#include <cstdint>

namespace hsa {

namespace {

// Per-chunk scratch of the piece builder, kept across segments (one per thread, grown to the memory's chunks):
// clearing an array of every chunk at each segment would cost more than the segment's own work, and a std::set
// of the piece's chunks cost more than the rest of the fetch (the host does this while the GPU waits for it).
// mark[c] == stamp: chunk c is in the current piece; local[c]: its position there once the piece is closed.
struct ChunkMarks {
  std::vector<uint32_t> mark;
  std::vector<int32_t> local;
  uint32_t stamp = 0;
  uint32_t next_piece(int64_t chunks) {
    if (static_cast<int64_t>(mark.size()) < chunks) {  // new entries are 0: below every stamp handed out
      mark.resize(static_cast<size_t>(chunks), 0);
      local.resize(static_cast<size_t>(chunks), 0);
    }
    if (++stamp == 0) {  // wrapped: forget every old mark
      std::fill(mark.begin(), mark.end(), 0u);
      stamp = 1;
    }
    return stamp;
  }
};

}  // namespace

TieredAttention::TieredAttention(const ChunkMemory& memory, const Tensor& indices) : memory_(memory) {
  HSA_CHECK(indices.ndim() == 4 && indices.dim(0) == 1 && indices.dtype() == DType::i32,
            "TieredAttention: indices must be i32 [1, n, H, K], got {} {}", dtype_name(indices.dtype()),
            shape_str(indices.shape()));
  // The host needs the selection to know what to copy: the one wait on the device this path adds.
  Tensor host = indices.to(Device::cpu).contiguous();
  const int32_t* idx = host.data<int32_t>();
  const int64_t n = indices.dim(1), per_token = indices.dim(2) * indices.dim(3), chunks = memory.num_chunks();
  for (int64_t i = 0; i < n * per_token; ++i)
    HSA_CHECK(idx[i] < chunks, "TieredAttention: index {} selects chunk {} of a memory of {}", i, idx[i], chunks);
  const int64_t cap = std::max<int64_t>(memory.tiers().staging_pages, per_token);
  thread_local ChunkMarks marks;
  uint32_t piece = marks.next_piece(chunks);
  std::vector<int32_t> chosen;  // the current piece's chunks, in first-selected order
  auto close = [&](int64_t begin, int64_t end) {
    Piece p;
    p.begin = begin, p.end = end;
    p.chunks = chosen;
    std::sort(p.chunks.begin(), p.chunks.end());
    for (size_t u = 0; u < p.chunks.size(); ++u)
      marks.local[static_cast<size_t>(p.chunks[u])] = static_cast<int32_t>(u);
    std::vector<int32_t> local(idx + begin * per_token, idx + end * per_token);
    for (int32_t& c : local)
      if (c >= 0) c = marks.local[static_cast<size_t>(c)];
    p.local = Tensor::from_i32(local, {1, end - begin, indices.dim(2), indices.dim(3)});
    pieces_.push_back(std::move(p));
    chosen.clear();
  };
  auto in_piece = [&](int32_t c) { return marks.mark[static_cast<size_t>(c)] == piece; };
  int64_t begin = 0;
  std::vector<int32_t> fresh;  // token t's chunks not yet in the piece
  for (int64_t t = 0; t < n; ++t) {
    fresh.clear();
    for (int64_t j = 0; j < per_token; ++j) {
      int32_t c = idx[t * per_token + j];
      if (c >= 0 && !in_piece(c) && std::find(fresh.begin(), fresh.end(), c) == fresh.end()) fresh.push_back(c);
    }
    if (static_cast<int64_t>(chosen.size() + fresh.size()) > cap) {  // token t starts a new piece
      close(begin, t);
      begin = t;
      piece = marks.next_piece(chunks);
      fresh.clear();
      for (int64_t j = 0; j < per_token; ++j)
        if (idx[t * per_token + j] >= 0) fresh.push_back(idx[t * per_token + j]);
    }
    for (int32_t c : fresh)
      if (!in_piece(c)) {
        marks.mark[static_cast<size_t>(c)] = piece;
        chosen.push_back(c);
      }
  }
  close(begin, n);
  next_ = memory_.fetch(pieces_[0].chunks);
}

Tensor TieredAttention::forward(const Tensor& q, const Tensor& weights, double scale) {
  const int64_t n = q.dim(1);
  HSA_CHECK(pieces_.back().end == n, "TieredAttention::forward: q holds {} tokens, the selection {}", n,
            pieces_.back().end);
  std::vector<Tensor> outs;
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const Piece& p = pieces_[i];
    FetchedPages pages = std::move(next_);
    if (i + 1 < pieces_.size()) next_ = memory_.fetch(pieces_[i + 1].chunks);  // overlaps this piece's kernels
    pages.wait();
    if (p.chunks.empty()) {  // no token of the piece selected anything: hsa_attention gives zeros
      outs.push_back(Tensor::zeros({1, p.end - p.begin, q.dim(2), q.dim(3)}, q.dtype(), q.device()));
      continue;
    }
    const bool whole = p.begin == 0 && p.end == n;
    Tensor qp = whole ? q : q.slice(1, p.begin, p.end), wp = whole ? weights : weights.slice(1, p.begin, p.end);
    outs.push_back(
        ops::hsa_attention_forward(qp, pages.k, pages.v, p.local.to(q.device()), wp, scale).out);
  }
  return outs.size() == 1 ? outs[0] : ops::concat(outs, 1);
}

}  // namespace hsa

#include "model/tiered_attention.h"

#include "ops/shape_ops.h"

#include <algorithm>
#include <set>

namespace hsa {

TieredAttention::TieredAttention(const ChunkMemory& memory, const Tensor& indices) : memory_(memory) {
  HSA_CHECK(indices.ndim() == 4 && indices.dim(0) == 1 && indices.dtype() == DType::i32,
            "TieredAttention: indices must be i32 [1, n, H, K], got {} {}", dtype_name(indices.dtype()),
            shape_str(indices.shape()));
  // The host needs the selection to know what to copy: the one wait on the device this path adds.
  Tensor host = indices.to(Device::cpu).contiguous();
  const int32_t* idx = host.data<int32_t>();
  const int64_t n = indices.dim(1), per_token = indices.dim(2) * indices.dim(3);
  const int64_t cap = std::max<int64_t>(memory.tiers().staging_pages, per_token);
  std::set<int32_t> chosen;
  auto close = [&](int64_t begin, int64_t end) {
    Piece p;
    p.begin = begin, p.end = end;
    p.chunks.assign(chosen.begin(), chosen.end());
    std::vector<int32_t> local(idx + begin * per_token, idx + end * per_token);
    for (int32_t& c : local)
      if (c >= 0) c = static_cast<int32_t>(std::lower_bound(p.chunks.begin(), p.chunks.end(), c) - p.chunks.begin());
    p.local = Tensor::from_i32(local, {1, end - begin, indices.dim(2), indices.dim(3)});
    pieces_.push_back(std::move(p));
    chosen.clear();
  };
  int64_t begin = 0;
  std::vector<int32_t> fresh;  // token t's chunks not yet in the piece
  for (int64_t t = 0; t < n; ++t) {
    fresh.clear();
    for (int64_t j = 0; j < per_token; ++j) {
      int32_t c = idx[t * per_token + j];
      if (c >= 0 && !chosen.count(c) && std::find(fresh.begin(), fresh.end(), c) == fresh.end()) fresh.push_back(c);
    }
    if (static_cast<int64_t>(chosen.size() + fresh.size()) > cap) {  // token t starts a new piece
      close(begin, t);
      begin = t;
      fresh.clear();
      for (int64_t j = 0; j < per_token; ++j)
        if (idx[t * per_token + j] >= 0) fresh.push_back(idx[t * per_token + j]);
    }
    chosen.insert(fresh.begin(), fresh.end());
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

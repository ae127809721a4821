// The chunk routing of a selection, kept from the chunk attention forward for the backwards. On CUDA the chunk
// attention (forward and backward) and the retrieval backward group the selected (token, slot) entries of indices
// [B, L, H, K] by the chunk they chose, with a device sort (cuda/hsa_support.cuh). The routing reads nothing but
// the indices, and a training step does not change them between its forward and its backward, so
// hsa_attention_forward can hand back the routing it built and hsa_attention_backward and retrieval_backward take it
// instead of sorting again: one sort per HSA layer and step instead of three. The results are bit-identical with and
// without it (the same deterministic sort of the same keys).
// Opaque: device buffers from the caching allocator, shared by copies of the handle and freed with the last one
// (8 bytes per (token, head, slot) entry and 4 per (batch, head, chunk)). Empty on the CPU, which neither builds
// nor reads one, and where the forward groups nothing (its decode path, a few query tokens): an op given an empty
// routing builds its own. The indices must not be written in place while a routing of them is kept.
#pragma once
#include "cuda/hsa_support.h"

#include <hsa/tensor.h>

#include <cstdint>

namespace hsa::ops {

class HsaRouting {
 public:
  bool empty() const { return device_ == nullptr; }

  // For the ops (ops/hsa_attention.cpp, ops/retrieval.cpp). The routing that the CUDA forward built from `indices`
  // (the caller's tensor) for C = `chunks`; an empty handle when `device` is null.
  static HsaRouting from_cuda(cuda::SharedRouting device, const Tensor& indices, int64_t chunks);
  // The device routing for a call of `op` on `indices` (the caller's tensor) with C = `chunks`: null when empty (the
  // op builds one); throws when it was built from another indices tensor or for another C.
  const cuda::detail::Routing* device_for(const char* op, const Tensor& indices, int64_t chunks) const;

 private:
  cuda::SharedRouting device_;
  // The indices it groups, held so that a tensor at the same address, shape and strides is these very indices.
  Tensor indices_;
  int64_t chunks_ = 0;
};

}  // namespace hsa::ops

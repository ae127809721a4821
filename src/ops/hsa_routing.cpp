#include "ops/hsa_routing.h"

#include <hsa/error.h>

#include <utility>

namespace hsa::ops {

HsaRouting HsaRouting::from_cuda(cuda::SharedRouting device, const Tensor& indices, int64_t chunks) {
  HsaRouting r;
  if (!device) return r;
  r.device_ = std::move(device);
  r.indices_ = indices;
  r.chunks_ = chunks;
  return r;
}

const cuda::detail::Routing* HsaRouting::device_for(const char* op, const Tensor& indices, int64_t chunks) const {
  if (empty()) return nullptr;
  // indices_ keeps its storage alive, so no other tensor's elements start at its address.
  const bool same_indices = indices.device() == indices_.device() && indices.raw_data() == indices_.raw_data() &&
                            indices.shape() == indices_.shape() && indices.strides() == indices_.strides();
  HSA_CHECK(same_indices,
            "{}: the given routing groups another indices tensor (of shape {}) than 'indices' (of shape {}): pass "
            "the routing that hsa_attention_forward built from these very indices, or none",
            op, shape_str(indices_.shape()), shape_str(indices.shape()));
  HSA_CHECK(chunks == chunks_, "{}: the given routing was built for C = {} chunks, this call has C = {}", op,
            chunks_, chunks);
  return device_.get();
}

}  // namespace hsa::ops

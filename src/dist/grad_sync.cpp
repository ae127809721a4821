#include "dist/grad_sync.h"

#include "ops/elementwise.h"
#include "ops/shape_ops.h"

#include <hsa/error.h>

#include <string>
#include <vector>

namespace hsa::dist {
namespace {

// One bucket: all-reduce the concatenation of these gradients, then give each its slice of the mean.
void reduce_bucket(Communicator& comm, TensorMap& grads, const std::vector<std::string>& names) {
  std::vector<Tensor> flat;
  flat.reserve(names.size());
  for (const std::string& name : names) flat.push_back(grads.at(name).to(DType::f32).contiguous().view({-1}));
  Tensor bucket = names.size() == 1 ? flat[0].clone() : ops::concat(flat, 0);
  comm.all_reduce_sum(bucket);
  bucket = ops::scale(bucket, 1.0 / double(comm.world_size()));
  int64_t offset = 0;
  for (const std::string& name : names) {
    Tensor& g = grads.at(name);
    const int64_t n = g.numel();
    g = bucket.slice(0, offset, offset + n).view(g.shape());
    offset += n;
  }
}

}  // namespace

void average_gradients(Communicator& comm, TensorMap& grads, size_t bucket_bytes) {
  if (comm.backend() == "local") return;
  HSA_CHECK(bucket_bytes > 0, "average_gradients: bucket_bytes must be > 0");
  std::vector<std::string> names;
  size_t bytes = 0;
  for (const auto& [name, g] : grads) {
    HSA_CHECK(g.device() == comm.device(), "average_gradients: gradient {} is on {}, the {} communicator on {}", name,
              device_name(g.device()), comm.backend(), device_name(comm.device()));
    names.push_back(name);
    bytes += size_t(g.numel()) * sizeof(float);
    if (bytes >= bucket_bytes) {
      reduce_bucket(comm, grads, names);
      names.clear();
      bytes = 0;
    }
  }
  if (!names.empty()) reduce_bucket(comm, grads, names);
}

}  // namespace hsa::dist

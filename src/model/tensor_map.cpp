#include "model/tensor_map.h"

#include "ops/elementwise.h"

namespace hsa {

const Tensor& need(const TensorMap& map, const std::string& name) {
  auto it = map.find(name);
  HSA_CHECK(it != map.end(), "missing tensor '{}'", name);
  return it->second;
}

TensorMap convert(const TensorMap& map, Device device, DType dtype) {
  TensorMap out;
  for (const auto& [name, t] : map) out.emplace(name, t.to(device).to(dtype));
  return out;
}

void accumulate_grad(TensorMap& grads, const std::string& name, const Tensor& g) {
  auto it = grads.find(name);
  if (it == grads.end()) {
    grads.emplace(name, g);
  } else {
    ops::add_(it->second, g);
  }
}

}  // namespace hsa

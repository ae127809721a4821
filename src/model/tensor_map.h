// Named tensors: parameters, gradients and optimizer state are all maps from parameter name to tensor.
#pragma once
#include <hsa/tensor.h>

#include <map>
#include <string>

namespace hsa {

using TensorMap = std::map<std::string, Tensor>;

// The tensor called `name`; a clear error naming it when it is missing.
const Tensor& need(const TensorMap& map, const std::string& name);

// Every tensor on `device` in `dtype`; tensors already there in that dtype are shared, not copied.
TensorMap convert(const TensorMap& map, Device device, DType dtype);

// grads[name] += g (the first contribution is stored as is).
void accumulate_grad(TensorMap& grads, const std::string& name, const Tensor& g);

}  // namespace hsa

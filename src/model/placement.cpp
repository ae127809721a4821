#include "model/placement.h"

#include "tensor/device_memory.h"

namespace hsa {

Placement resolve_placement(const std::string& device, const std::string& dtype) {
  Placement p;
  p.device = parse_device(device);
  p.description = describe_device(p.device);
  p.dtype = dtype.empty() ? (p.device == Device::cuda ? DType::bf16 : DType::f32) : parse_dtype(dtype);
  HSA_CHECK(p.dtype == DType::f32 || p.dtype == DType::bf16, "--dtype must be f32 or bf16, got {}", dtype);
  return p;
}

Model place_model(const Checkpoint& checkpoint, const Placement& placement) {
  return Model(checkpoint.config, convert(checkpoint.params, placement.device, placement.dtype));
}

}  // namespace hsa

#include "ops/dispatch.h"


namespace hsa::ops {

Tensor to_compute(const Tensor& t) {
  if (t.dtype() == DType::bf16 && t.device() == Device::cpu) return t.to(DType::f32);
  return t.contiguous();
}

Tensor to_storage(const Tensor& result, DType storage) {
  if (storage == DType::bf16 && result.dtype() != DType::bf16) return result.to(DType::bf16);
  return result;
}

Device common_device(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> tensors) {
  const char* first_name = nullptr;
  Device device = Device::cpu;
  for (const auto& [name, t] : tensors) {
    check_defined(op, name, *t);
    if (!first_name) {
      first_name = name;
      device = t->device();
    } else {
      HSA_CHECK(t->device() == device, "{}: '{}' is on {} but '{}' is on {}", op, name, device_name(t->device()),
                first_name, device_name(device));
    }
  }
  return device;
}

void require_cpu(const char* op, Device device) {
  HSA_CHECK(device == Device::cpu, "{}: no {} kernel yet", op, device_name(device));
}

}  // namespace hsa::ops

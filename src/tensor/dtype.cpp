#include <hsa/dtype.h>
#include <hsa/error.h>

namespace hsa {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::bf16: return 2;
    case DType::i32: return 4;
    case DType::f64: return 8;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::i32: return "i32";
    case DType::f64: return "f64";
  }
  return "?";
}

std::string_view device_name(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

DType parse_dtype(std::string_view name) {
  for (DType d : {DType::f32, DType::bf16, DType::i32, DType::f64})
    if (dtype_name(d) == name) return d;
  fail("unknown dtype '{}' (expected f32, bf16, i32 or f64)", name);
}

Device parse_device(std::string_view name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  fail("unknown device '{}' (expected cpu or cuda)", name);
}

bool is_floating(DType dtype) { return dtype != DType::i32; }

}  // namespace hsa

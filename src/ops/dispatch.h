// Helpers every op uses to validate its inputs and pick the kernel for the device and element type.
#pragma once
#include <hsa/tensor.h>

#include <initializer_list>
#include <utility>

namespace hsa::ops {

// Calls fn.template operator()<T>() with T = float for f32 and T = double for f64: the CPU kernels are
// templates on the compute type. bf16 tensors are converted with to_compute() before this.
template <class Fn> decltype(auto) dispatch_float(const char* op, DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f32: return fn.template operator()<float>();
    case DType::f64: return fn.template operator()<double>();
    default: fail("{}: no cpu kernel for dtype {} (f32 or f64)", op, dtype_name(dtype));
  }
}

// The CPU computes bf16 in f32: returns a contiguous f32 copy of bf16 tensors, and the contiguous tensor itself
// otherwise.
Tensor to_compute(const Tensor& t);

// Casts an op result back to the storage dtype of its input (no-op unless that was bf16).
Tensor to_storage(const Tensor& result, DType storage);

// All named tensors must be defined and on one device; returns it.
Device common_device(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> tensors);

// For ops that have no CUDA kernel yet: a clear error instead of touching device memory from the host.
void require_cpu(const char* op, Device device);

}  // namespace hsa::ops

// Picks the CUDA kernel instantiation for a storage dtype: T = float for f32, T = hsa::bf16 for bf16 (kernels
// read bf16 as stored and do their arithmetic in f32). Plain C++, for the ops' .cpp files.
#pragma once
#include <hsa/dtype.h>
#include <hsa/error.h>

namespace hsa::cuda {

template <class Fn> decltype(auto) dispatch_storage(const char* op, DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f32: return fn.template operator()<float>();
    case DType::bf16: return fn.template operator()<bf16>();
    default: fail("{}: no cuda kernel for dtype {} (f32 or bf16)", op, dtype_name(dtype));
  }
}

}  // namespace hsa::cuda

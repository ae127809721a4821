#include "ops/rope.h"

#include "cpu/rope.h"
#include "cuda/dtype_dispatch.h"
#include "cuda/rope.h"
#include "ops/dispatch.h"

#include <cmath>

namespace hsa::ops {

namespace {
Tensor rope_apply(const char* op, const char* name, const Tensor& x_in, int64_t position_offset, double theta,
                  int sign) {
  check_float(op, name, x_in);
  check_ndim(op, name, x_in, 4);
  HSA_CHECK(x_in.dim(3) % 2 == 0, "{}: '{}' has shape {}: head dim D = {} must be even", op, name,
            shape_str(x_in.shape()), x_in.dim(3));
  HSA_CHECK(position_offset >= 0, "{}: position_offset must be >= 0, got {}", op, position_offset);
  HSA_CHECK(std::isfinite(theta) && theta > 0, "{}: theta must be positive and finite, got {}", op, theta);
  Device device = common_device(op, {{name, &x_in}});
  if (device == Device::cuda) {
    Tensor x = x_in.contiguous();
    Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
    cuda::dispatch_storage(op, x.dtype(), [&]<class T>() {
      cuda::rope_rotate<T>(x.data<T>(), y.data<T>(), x.dim(0), x.dim(1), x.dim(2), x.dim(3), position_offset, theta,
                           sign);
    });
    return y;
  }
  require_cpu(op, device);
  Tensor x = to_compute(x_in);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(op, x.dtype(), [&]<class T>() {
    cpu::rope_rotate<T>(x.data<T>(), y.data<T>(), x.dim(0), x.dim(1), x.dim(2), x.dim(3), position_offset, theta,
                        sign);
  });
  return to_storage(y, x_in.dtype());
}
}  // namespace

Tensor rope_forward(const Tensor& x, int64_t position_offset, double theta) {
  return rope_apply("rope_forward", "x", x, position_offset, theta, +1);
}

Tensor rope_backward(const Tensor& dy, int64_t position_offset, double theta) {
  return rope_apply("rope_backward", "dy", dy, position_offset, theta, -1);
}

}  // namespace hsa::ops

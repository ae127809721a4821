#include "ops/rope.h"

#include "cpu/rope.h"
#include "ops/dispatch.h"

namespace hsa::ops {

namespace {
Tensor rotate(const char* op, const Tensor& x_in, int64_t position_offset, double theta, int direction) {
  check_float(op, "x", x_in);
  check_ndim(op, "x", x_in, 4);
  HSA_CHECK(x_in.dim(3) % 2 == 0, "{}: head dim must be even, got shape {}", op, shape_str(x_in.shape()));
  HSA_CHECK(theta > 1, "{}: theta must be > 1, got {}", op, theta);
  HSA_CHECK(position_offset >= 0, "{}: negative position offset {}", op, position_offset);
  require_cpu(op, x_in.device());
  Tensor x = to_compute(x_in);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(op, x.dtype(), [&]<class T>() {
    cpu::rope_rotate<T>(x.data<T>(), y.data<T>(), x.dim(0), x.dim(1), x.dim(2), x.dim(3), position_offset, theta,
                        direction);
  });
  return to_storage(y, x_in.dtype());
}
}  // namespace

Tensor rope_forward(const Tensor& x, int64_t position_offset, double theta) {
  return rotate("rope_forward", x, position_offset, theta, +1);
}

Tensor rope_backward(const Tensor& dy, int64_t position_offset, double theta) {
  return rotate("rope_backward", dy, position_offset, theta, -1);
}

}  // namespace hsa::ops

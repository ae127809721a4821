#include "ops/linear.h"

#include "cpu/linear.h"
#include "cuda/dtype_dispatch.h"
#include "cuda/linear.h"
#include "ops/dispatch.h"

namespace hsa::ops {

namespace {
void check_inputs(const char* op, const Tensor& x, const Tensor& w) {
  check_float(op, "x", x);
  check_float(op, "w", w);
  check_ndim(op, "w", w, 2);
  HSA_CHECK(x.ndim() >= 1, "{}: 'x' must have at least one axis, got {}", op, shape_str(x.shape()));
  HSA_CHECK(x.dim(-1) == w.dim(1), "{}: 'x' has shape {} but 'w' has shape {}: x's last axis must equal w's {}", op,
            shape_str(x.shape()), shape_str(w.shape()), w.dim(1));
  check_same_dtype(op, "x", x, "w", w);
}

Shape out_shape(const Tensor& x, const Tensor& w) {
  Shape s = x.shape();
  s.back() = w.dim(0);
  return s;
}
}  // namespace

Tensor linear_forward(const Tensor& x_in, const Tensor& w_in) {
  const char* op = "linear_forward";
  check_inputs(op, x_in, w_in);
  Device device = common_device(op, {{"x", &x_in}, {"w", &w_in}});
  if (device == Device::cuda) {
    Tensor x = x_in.contiguous(), w = w_in.contiguous();
    int64_t in = w.dim(1), out = w.dim(0), rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
    Tensor y = Tensor::empty(out_shape(x, w), x.dtype(), Device::cuda);
    cuda::dispatch_storage(op, x.dtype(), [&]<class T>() {
      cuda::linear_forward<T>(x.data<T>(), w.data<T>(), y.data<T>(), rows, in, out);
    });
    return y;
  }
  require_cpu(op, device);
  Tensor x = to_compute(x_in), w = to_compute(w_in);
  int64_t in = w.dim(1), out = w.dim(0), rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  Tensor y = Tensor::empty(out_shape(x, w), x.dtype());
  dispatch_float(op, x.dtype(), [&]<class T>() {
    cpu::linear_forward<T>(x.data<T>(), w.data<T>(), y.data<T>(), rows, in, out);
  });
  return to_storage(y, x_in.dtype());
}

LinearGrads linear_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& w_in) {
  const char* op = "linear_backward";
  check_inputs(op, x_in, w_in);
  check_shape(op, "dy", dy_in, out_shape(x_in, w_in));
  check_same_dtype(op, "x", x_in, "dy", dy_in);
  Device device = common_device(op, {{"dy", &dy_in}, {"x", &x_in}, {"w", &w_in}});
  if (device == Device::cuda) {
    Tensor dy = dy_in.contiguous(), x = x_in.contiguous(), w = w_in.contiguous();
    int64_t in = w.dim(1), out = w.dim(0), rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
    LinearGrads g{Tensor::empty(x.shape(), x.dtype(), Device::cuda), Tensor::empty(w.shape(), x.dtype(), Device::cuda)};
    cuda::dispatch_storage(op, x.dtype(), [&]<class T>() {
      cuda::linear_backward<T>(dy.data<T>(), x.data<T>(), w.data<T>(), g.dx.data<T>(), g.dw.data<T>(), rows, in, out);
    });
    return g;
  }
  require_cpu(op, device);
  Tensor dy = to_compute(dy_in), x = to_compute(x_in), w = to_compute(w_in);
  int64_t in = w.dim(1), out = w.dim(0), rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  LinearGrads g{Tensor::empty(x.shape(), x.dtype()), Tensor::empty(w.shape(), x.dtype())};
  dispatch_float(op, x.dtype(), [&]<class T>() {
    cpu::linear_backward<T>(dy.data<T>(), x.data<T>(), w.data<T>(), g.dx.data<T>(), g.dw.data<T>(), rows, in, out);
  });
  g.dx = to_storage(g.dx, x_in.dtype());
  g.dw = to_storage(g.dw, w_in.dtype());
  return g;
}

}  // namespace hsa::ops

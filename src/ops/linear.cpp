#include "ops/linear.h"

#include "cpu/gemm.h"
#include "ops/dispatch.h"

namespace hsa::ops {

namespace {
void check_inputs(const char* op, const Tensor& x, const Tensor& w) {
  check_float(op, "x", x);
  check_ndim(op, "w", w, 2);
  HSA_CHECK(x.ndim() >= 1 && x.dim(-1) == w.dim(1), "{}: 'x' {} does not match 'w' {} (last axis of x must be {})", op,
            shape_str(x.shape()), shape_str(w.shape()), w.dim(1));
  check_same_dtype(op, "x", x, "w", w);
}
Shape with_last(const Shape& s, int64_t last) {
  Shape out = s;
  out.back() = last;
  return out;
}
}  // namespace

Tensor linear_forward(const Tensor& x_in, const Tensor& w_in) {
  const char* op = "linear_forward";
  check_inputs(op, x_in, w_in);
  require_cpu(op, common_device(op, {{"x", &x_in}, {"w", &w_in}}));
  Tensor x = to_compute(x_in), w = to_compute(w_in);
  int64_t in = w.dim(1), out = w.dim(0), rows = x.numel() / std::max<int64_t>(in, 1);
  Tensor y = Tensor::empty(with_last(x.shape(), out), x.dtype());
  dispatch_float(op, x.dtype(), [&]<class T>() {
    cpu::gemm<T>(false, true, rows, out, in, T(1), x.data<T>(), in, w.data<T>(), in, T(0), y.data<T>(), out);
  });
  return to_storage(y, x_in.dtype());
}

LinearGrads linear_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& w_in) {
  const char* op = "linear_backward";
  check_inputs(op, x_in, w_in);
  check_shape(op, "dy", dy_in, with_last(x_in.shape(), w_in.dim(0)));
  require_cpu(op, common_device(op, {{"dy", &dy_in}, {"x", &x_in}, {"w", &w_in}}));
  Tensor x = to_compute(x_in), w = to_compute(w_in), dy = to_compute(dy_in).to(x.dtype());
  int64_t in = w.dim(1), out = w.dim(0), rows = x.numel() / std::max<int64_t>(in, 1);
  LinearGrads g{Tensor::empty(x.shape(), x.dtype()), Tensor::empty(w.shape(), x.dtype())};
  dispatch_float(op, x.dtype(), [&]<class T>() {
    cpu::gemm<T>(false, false, rows, in, out, T(1), dy.data<T>(), out, w.data<T>(), in, T(0), g.dx.data<T>(), in);
    cpu::gemm<T>(true, false, out, in, rows, T(1), dy.data<T>(), out, x.data<T>(), in, T(0), g.dw.data<T>(), in);
  });
  g.dx = to_storage(g.dx, x_in.dtype());
  g.dw = to_storage(g.dw, w_in.dtype());
  return g;
}

}  // namespace hsa::ops

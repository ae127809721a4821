#include "ops/elementwise.h"

#include "cpu/elementwise.h"
#include "ops/dispatch.h"

namespace hsa::ops {

namespace {
void check_pair(const char* op, const Tensor& a, const Tensor& b) {
  check_float(op, "a", a);
  check_shape(op, "b", b, a.shape());
  check_same_dtype(op, "a", a, "b", b);
  require_cpu(op, common_device(op, {{"a", &a}, {"b", &b}}));
}
}  // namespace

Tensor add(const Tensor& a_in, const Tensor& b_in) {
  check_pair("add", a_in, b_in);
  Tensor a = to_compute(a_in), b = to_compute(b_in);
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_float("add", a.dtype(), [&]<class T>() {
    cpu::axpby<T>(a.data<T>(), T(1), b.data<T>(), T(1), out.data<T>(), out.numel());
  });
  return to_storage(out, a_in.dtype());
}

void add_(Tensor& dst, const Tensor& src_in, double alpha) {
  check_pair("add_", dst, src_in);
  HSA_CHECK(dst.is_contiguous(), "add_: destination {} must be contiguous", dst.str());
  if (dst.dtype() == DType::bf16) {  // accumulate in f32, store back rounded
    Tensor sum = to_compute(dst);
    add_(sum, src_in.to(DType::f32), alpha);
    dst.copy_from(sum);
    return;
  }
  Tensor src = to_compute(src_in);
  dispatch_float("add_", dst.dtype(), [&]<class T>() {
    cpu::axpby<T>(src.data<T>(), T(alpha), dst.data<T>(), T(1), dst.data<T>(), dst.numel());
  });
}

Tensor scale(const Tensor& x_in, double s) {
  check_float("scale", "x", x_in);
  require_cpu("scale", x_in.device());
  Tensor x = to_compute(x_in);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float("scale", x.dtype(), [&]<class T>() { cpu::scale<T>(x.data<T>(), T(s), out.data<T>(), x.numel()); });
  return to_storage(out, x_in.dtype());
}

}  // namespace hsa::ops

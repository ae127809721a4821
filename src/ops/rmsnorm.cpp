#include "ops/rmsnorm.h"

#include "cpu/rmsnorm.h"
#include "cuda/dtype_dispatch.h"
#include "cuda/rmsnorm.h"
#include "ops/dispatch.h"

namespace hsa::ops {

namespace {
void check_inputs(const char* op, const Tensor& x, const Tensor& weight) {
  check_float(op, "x", x);
  HSA_CHECK(x.ndim() >= 1, "{}: 'x' must have at least one axis, got {}", op, shape_str(x.shape()));
  check_shape(op, "weight", weight, {x.dim(-1)});
  check_same_dtype(op, "x", x, "weight", weight);
}
}  // namespace

RmsNormOut rmsnorm_forward(const Tensor& x_in, const Tensor& weight_in, double eps) {
  const char* op = "rmsnorm_forward";
  check_inputs(op, x_in, weight_in);
  HSA_CHECK(eps > 0, "{}: eps must be positive, got {}", op, eps);
  Device device = common_device(op, {{"x", &x_in}, {"weight", &weight_in}});
  if (device == Device::cuda) {
    // bf16 storage, f32 math: y keeps x's dtype, rstd is f32 (the compute dtype), as on the CPU.
    Tensor x = x_in.contiguous(), weight = weight_in.contiguous();
    int64_t dim = x.dim(-1), rows = x.numel() / std::max<int64_t>(dim, 1);
    RmsNormOut out{Tensor::empty(x.shape(), x.dtype(), Device::cuda),
                   Tensor::empty(Shape(x.shape().begin(), x.shape().end() - 1), DType::f32, Device::cuda)};
    cuda::dispatch_storage(op, x.dtype(), [&]<class T>() {
      cuda::rmsnorm_forward<T>(x.data<T>(), weight.data<T>(), out.y.data<T>(), out.rstd.data<float>(), rows, dim,
                               eps);
    });
    return out;
  }
  require_cpu(op, device);
  Tensor x = to_compute(x_in), weight = to_compute(weight_in);
  int64_t dim = x.dim(-1), rows = x.numel() / std::max<int64_t>(dim, 1);
  Shape row_shape(x.shape().begin(), x.shape().end() - 1);
  RmsNormOut out{Tensor::empty(x.shape(), x.dtype()), Tensor::empty(row_shape, x.dtype())};
  dispatch_float(op, x.dtype(), [&]<class T>() {
    cpu::rmsnorm_forward<T>(x.data<T>(), weight.data<T>(), out.y.data<T>(), out.rstd.data<T>(), rows, dim, eps);
  });
  out.y = to_storage(out.y, x_in.dtype());
  return out;
}

RmsNormGrads rmsnorm_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& weight_in,
                              const Tensor& rstd_in) {
  const char* op = "rmsnorm_backward";
  check_inputs(op, x_in, weight_in);
  check_shape(op, "dy", dy_in, x_in.shape());
  check_shape(op, "rstd", rstd_in, Shape(x_in.shape().begin(), x_in.shape().end() - 1));
  Device device = common_device(op, {{"dy", &dy_in}, {"x", &x_in}, {"weight", &weight_in}, {"rstd", &rstd_in}});
  if (device == Device::cuda) {
    check_same_dtype(op, "x", x_in, "dy", dy_in);
    check_dtype(op, "rstd", rstd_in, DType::f32);  // what rmsnorm_forward returns on cuda
    Tensor x = x_in.contiguous(), weight = weight_in.contiguous(), dy = dy_in.contiguous(),
           rstd = rstd_in.contiguous();
    int64_t dim = x.dim(-1), rows = x.numel() / std::max<int64_t>(dim, 1);
    RmsNormGrads grads{Tensor::empty(x.shape(), x.dtype(), Device::cuda),
                       Tensor::empty(weight.shape(), x.dtype(), Device::cuda)};
    cuda::dispatch_storage(op, x.dtype(), [&]<class T>() {
      cuda::rmsnorm_backward<T>(dy.data<T>(), x.data<T>(), weight.data<T>(), rstd.data<float>(), grads.dx.data<T>(),
                                grads.dweight.data<T>(), rows, dim);
    });
    return grads;
  }
  require_cpu(op, device);
  Tensor x = to_compute(x_in), weight = to_compute(weight_in), dy = to_compute(dy_in).to(x.dtype()),
         rstd = to_compute(rstd_in).to(x.dtype());
  int64_t dim = x.dim(-1), rows = x.numel() / std::max<int64_t>(dim, 1);
  RmsNormGrads grads{Tensor::empty(x.shape(), x.dtype()), Tensor::empty(weight.shape(), x.dtype())};
  dispatch_float(op, x.dtype(), [&]<class T>() {
    cpu::rmsnorm_backward<T>(dy.data<T>(), x.data<T>(), weight.data<T>(), rstd.data<T>(), grads.dx.data<T>(),
                             grads.dweight.data<T>(), rows, dim);
  });
  grads.dx = to_storage(grads.dx, x_in.dtype());
  grads.dweight = to_storage(grads.dweight, weight_in.dtype());
  return grads;
}

}  // namespace hsa::ops

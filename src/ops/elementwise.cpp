#include "ops/elementwise.h"

#include "cpu/elementwise.h"
#include "cuda/dtype_dispatch.h"
#include "cuda/elementwise.h"
#include "ops/dispatch.h"

namespace hsa::ops {

namespace {
void check_pair(const char* op, const char* name_a, const Tensor& a, const char* name_b, const Tensor& b) {
  check_float(op, name_a, a);
  check_float(op, name_b, b);
  check_shape(op, name_b, b, a.shape());
  check_same_dtype(op, name_a, a, name_b, b);
}
}  // namespace

Tensor add(const Tensor& a_in, const Tensor& b_in) {
  const char* op = "add";
  check_pair(op, "a", a_in, "b", b_in);
  Device device = common_device(op, {{"a", &a_in}, {"b", &b_in}});
  if (device == Device::cuda) {
    Tensor a = a_in.contiguous(), b = b_in.contiguous();
    Tensor out = Tensor::empty(a.shape(), a.dtype(), Device::cuda);
    cuda::dispatch_storage(op, a.dtype(), [&]<class T>() {
      cuda::add<T>(a.data<T>(), b.data<T>(), out.data<T>(), a.numel());
    });
    return out;
  }
  require_cpu(op, device);
  Tensor a = to_compute(a_in), b = to_compute(b_in);
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_float(op, a.dtype(), [&]<class T>() { cpu::add<T>(a.data<T>(), b.data<T>(), out.data<T>(), a.numel()); });
  return to_storage(out, a_in.dtype());
}

void add_(Tensor& dst, const Tensor& src_in, double alpha) {
  const char* op = "add_";
  check_pair(op, "dst", dst, "src", src_in);
  Device device = common_device(op, {{"dst", &dst}, {"src", &src_in}});
  if (device == Device::cuda) {
    // In place in dst's storage dtype (bf16 is read, updated in f32 and rounded, per element; f64 in f64); a
    // strided dst (a view) is walked through its strides.
    Tensor src = src_in.contiguous();
    if (dst.dtype() == DType::f64) {  // device-side f64 sums (the MoE aux loss); no strided f64 kernel
      HSA_CHECK(dst.is_contiguous(), "{}: 'dst' is a strided f64 view on cuda; f64 is supported contiguous only", op);
      cuda::add_scaled_f64(dst.data<double>(), src.data<double>(), alpha, dst.numel());
      return;
    }
    cuda::dispatch_storage(op, dst.dtype(), [&]<class T>() {
      if (dst.is_contiguous())
        cuda::add_scaled<T>(dst.data<T>(), src.data<T>(), float(alpha), dst.numel());
      else
        cuda::add_scaled_strided<T>(dst.data<T>(), dst.shape().data(), dst.strides().data(), dst.ndim(),
                                    src.data<T>(), float(alpha));
    });
    return;
  }
  require_cpu(op, device);
  Tensor src = to_compute(src_in);
  // f32/f64 contiguous: update in place. Otherwise (bf16, strided view) to_compute makes a fresh contiguous copy
  // in the compute dtype; update that and write it back through copy_from, which honours strides and rounds.
  bool direct = dst.is_contiguous() && dst.dtype() != DType::bf16;
  Tensor work = direct ? dst : to_compute(dst);
  dispatch_float(op, work.dtype(), [&]<class T>() {
    cpu::add_scaled<T>(work.data<T>(), src.data<T>(), T(alpha), work.numel());
  });
  if (!direct) dst.copy_from(work);
}

Tensor scale(const Tensor& x_in, double s) {
  const char* op = "scale";
  check_float(op, "x", x_in);
  Device device = common_device(op, {{"x", &x_in}});
  if (device == Device::cuda) {
    Tensor x = x_in.contiguous();
    Tensor out = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
    cuda::dispatch_storage(op, x.dtype(), [&]<class T>() { cuda::scale<T>(x.data<T>(), float(s), out.data<T>(), x.numel()); });
    return out;
  }
  require_cpu(op, device);
  Tensor x = to_compute(x_in);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(op, x.dtype(), [&]<class T>() { cpu::scale<T>(x.data<T>(), T(s), out.data<T>(), x.numel()); });
  return to_storage(out, x_in.dtype());
}

double sum_of_squares(const std::vector<Tensor>& xs) {
  const char* op = "sum_of_squares";
  if (xs.empty()) return 0.0;
  Device device = xs.front().device();
  for (const Tensor& x : xs) {
    check_float(op, "x", x);
    HSA_CHECK(x.device() == device, "{}: tensors on {} and {}; all must be on one device", op, device_name(device),
              device_name(x.device()));
  }
  if (device == Device::cuda) {
    // One launch per storage dtype over all its tensors (a training step has hundreds of gradients).
    for (const Tensor& x : xs)
      HSA_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::bf16,
                "{}: no cuda kernel for dtype {} (f32 or bf16)", op, dtype_name(x.dtype()));
    Tensor acc = Tensor::zeros({1}, DType::f64, Device::cuda);
    std::vector<Tensor> kept;  // contiguous copies, alive until the kernels are queued
    for (DType dtype : {DType::f32, DType::bf16}) {
      cuda::dispatch_storage(op, dtype, [&]<class T>() {
        std::vector<const T*> ptrs;
        std::vector<int64_t> ns;
        for (const Tensor& x_in : xs) {
          if (x_in.dtype() != dtype) continue;
          kept.push_back(x_in.contiguous());
          ptrs.push_back(kept.back().data<T>());
          ns.push_back(kept.back().numel());
        }
        cuda::accumulate_sum_of_squares<T>(ptrs.data(), ns.data(), int64_t(ptrs.size()), acc.data<double>());
      });
    }
    return acc.to(Device::cpu).item();
  }
  require_cpu(op, device);
  double total = 0;
  for (const Tensor& x_in : xs) {
    Tensor x = to_compute(x_in);
    dispatch_float(op, x.dtype(), [&]<class T>() { total += cpu::sum_of_squares<T>(x.data<T>(), x.numel()); });
  }
  return total;
}

}  // namespace hsa::ops

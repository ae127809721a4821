#include "ops/adamw.h"

#include "cpu/adamw.h"
#include "ops/dispatch.h"

namespace hsa::ops {

void adamw_step(Tensor& param, const Tensor& grad_in, Tensor& m, Tensor& v, int64_t step, const AdamWConfig& c) {
  const char* op = "adamw_step";
  check_float(op, "param", param);
  check_shape(op, "grad", grad_in, param.shape());
  check_shape(op, "m", m, param.shape());
  check_shape(op, "v", v, param.shape());
  check_same_dtype(op, "param", param, "m", m);
  check_same_dtype(op, "param", param, "v", v);
  HSA_CHECK(step >= 1, "{}: step is 1-based, got {}", op, step);
  HSA_CHECK(c.lr >= 0 && c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1 && c.eps > 0,
            "{}: bad hyper-parameters lr={} beta1={} beta2={} eps={}", op, c.lr, c.beta1, c.beta2, c.eps);
  HSA_CHECK(param.is_contiguous() && m.is_contiguous() && v.is_contiguous(), "{}: param, m and v must be contiguous",
            op);
  require_cpu(op, common_device(op, {{"param", &param}, {"grad", &grad_in}, {"m", &m}, {"v", &v}}));
  Tensor grad = to_compute(grad_in).to(param.dtype());
  dispatch_float(op, param.dtype(), [&]<class T>() {
    cpu::adamw_step<T>(param.data<T>(), grad.data<T>(), m.data<T>(), v.data<T>(), param.numel(), c.lr, c.beta1,
                       c.beta2, c.eps, c.weight_decay, step);
  });
}

}  // namespace hsa::ops

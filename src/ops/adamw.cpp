#include "ops/adamw.h"

#include "cpu/adamw.h"
#include "cuda/adamw.h"
#include "cuda/dtype_dispatch.h"
#include "ops/dispatch.h"

#include <cmath>

namespace hsa::ops {

void adamw_step(Tensor& param, const Tensor& grad_in, Tensor& m, Tensor& v, int64_t step, const AdamWConfig& cfg) {
  const char* op = "adamw_step";
  check_defined(op, "param", param);
  HSA_CHECK(param.dtype() == DType::f32 || param.dtype() == DType::f64,
            "{}: 'param' has dtype {}, expected f32 or f64 (keep an f32 master copy of bf16 weights)", op,
            dtype_name(param.dtype()));
  check_float(op, "grad", grad_in);
  check_shape(op, "grad", grad_in, param.shape());
  check_shape(op, "m", m, param.shape());
  check_shape(op, "v", v, param.shape());
  check_dtype(op, "m", m, param.dtype());
  check_dtype(op, "v", v, param.dtype());
  HSA_CHECK(param.is_contiguous() && m.is_contiguous() && v.is_contiguous(),
            "{}: 'param', 'm' and 'v' must be contiguous (updated in place), shape {}", op,
            shape_str(param.shape()));
  HSA_CHECK(step >= 1, "{}: step is 1-based, got {}", op, step);
  HSA_CHECK(std::isfinite(cfg.lr) && cfg.lr >= 0, "{}: lr must be finite and >= 0, got {}", op, cfg.lr);
  HSA_CHECK(cfg.beta1 >= 0 && cfg.beta1 < 1, "{}: beta1 must be in [0, 1), got {}", op, cfg.beta1);
  HSA_CHECK(cfg.beta2 >= 0 && cfg.beta2 < 1, "{}: beta2 must be in [0, 1), got {}", op, cfg.beta2);
  HSA_CHECK(std::isfinite(cfg.eps) && cfg.eps > 0, "{}: eps must be positive, got {}", op, cfg.eps);
  HSA_CHECK(std::isfinite(cfg.weight_decay) && cfg.weight_decay >= 0, "{}: weight_decay must be >= 0, got {}", op,
            cfg.weight_decay);
  Device device = common_device(op, {{"param", &param}, {"grad", &grad_in}, {"m", &m}, {"v", &v}});
  if (device == Device::cuda) {
    check_dtype(op, "param", param, DType::f32);  // f64 masters are a CPU-only (gradcheck) feature
    Tensor grad = grad_in.contiguous();
    cuda::dispatch_storage(op, grad.dtype(), [&]<class G>() {
      cuda::adamw_step<G>(param.data<float>(), grad.data<G>(), m.data<float>(), v.data<float>(), param.numel(),
                          cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay, step);
    });
    return;
  }
  require_cpu(op, device);
  Tensor grad = to_compute(grad_in).to(param.dtype());
  dispatch_float(op, param.dtype(), [&]<class T>() {
    cpu::adamw_step<T>(param.data<T>(), grad.data<T>(), m.data<T>(), v.data<T>(), param.numel(), cfg.lr, cfg.beta1,
                       cfg.beta2, cfg.eps, cfg.weight_decay, step);
  });
}

}  // namespace hsa::ops

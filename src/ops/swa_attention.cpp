#include "ops/swa_attention.h"

#include "cpu/swa_attention.h"
#include "cuda/dtype_dispatch.h"
#include "cuda/swa_attention.h"
#include "ops/dispatch.h"

#include <cmath>

namespace hsa::ops {

namespace {

SwaDims check_inputs(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const SwaParams& p) {
  check_float(op, "q", q);
  check_float(op, "k", k);
  check_float(op, "v", v);
  check_ndim(op, "q", q, 4);
  check_ndim(op, "k", k, 4);
  check_ndim(op, "v", v, 4);
  const int64_t batch = q.dim(0), q_heads = q.dim(2), dim = q.dim(3), kv_heads = k.dim(2);
  HSA_CHECK(k.dim(0) == batch && k.dim(3) == dim,
            "{}: 'k' has shape {}, expected [B, Lk, H, D] with B = {} and D = {} as in 'q' {}", op,
            shape_str(k.shape()), batch, dim, shape_str(q.shape()));
  check_shape(op, "v", v, k.shape());
  HSA_CHECK(kv_heads >= 1 && q_heads >= 1 && q_heads % kv_heads == 0,
            "{}: query heads HQ = {} ('q' {}) must be a positive multiple of KV heads H = {} ('k' {})", op, q_heads,
            shape_str(q.shape()), kv_heads, shape_str(k.shape()));
  HSA_CHECK(p.window >= 1, "{}: window must be >= 1, got {}", op, p.window);
  HSA_CHECK(std::isfinite(p.scale), "{}: scale must be finite, got {}", op, p.scale);
  check_same_dtype(op, "q", q, "k", k);
  check_same_dtype(op, "q", q, "v", v);
  return {batch, q.dim(1), k.dim(1), q_heads, kv_heads, dim, p.window, p.q_start, p.k_start};
}

// The CUDA kernels compute f32 and bf16 (f32 accumulation) in their storage dtype, with head dims 32, 64, 128.
void check_cuda_inputs(const char* op, const Tensor& q, const SwaDims& d) {
  HSA_CHECK(q.dtype() == DType::f32 || q.dtype() == DType::bf16, "{}: no cuda kernel for dtype {} ('q' {}; f32 or bf16)",
            op, dtype_name(q.dtype()), shape_str(q.shape()));
  HSA_CHECK(d.head_dim == 32 || d.head_dim == 64 || d.head_dim == 128,
            "{}: no cuda kernel for head dim D = {} ('q' {}; 32, 64 or 128)", op, d.head_dim, shape_str(q.shape()));
}

}  // namespace

SwaOut swa_forward(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const SwaParams& p) {
  const char* op = "swa_forward";
  const SwaDims d = check_inputs(op, q_in, k_in, v_in, p);
  const Device device = common_device(op, {{"q", &q_in}, {"k", &k_in}, {"v", &v_in}});
  if (device == Device::cuda) {
    check_cuda_inputs(op, q_in, d);
    Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    SwaOut out{Tensor::empty(q.shape(), q.dtype(), Device::cuda),
               Tensor::empty({d.batch, d.q_len, d.q_heads}, DType::f32, Device::cuda)};
    cuda::dispatch_storage(op, q.dtype(), [&]<class T>() {
      cuda::swa_forward<T>(q.data<T>(), k.data<T>(), v.data<T>(), out.out.data<T>(), out.lse.data<float>(), d,
                           p.scale);
    });
    return out;
  }
  require_cpu(op, device);
  Tensor q = to_compute(q_in), k = to_compute(k_in), v = to_compute(v_in);
  SwaOut out{Tensor::empty(q.shape(), q.dtype()), Tensor::empty({d.batch, d.q_len, d.q_heads}, q.dtype())};
  dispatch_float(op, q.dtype(), [&]<class T>() {
    cpu::swa_forward<T>(q.data<T>(), k.data<T>(), v.data<T>(), out.out.data<T>(), out.lse.data<T>(), d, p.scale);
  });
  out.out = to_storage(out.out, q_in.dtype());
  return out;
}

SwaGrads swa_backward(const Tensor& dout_in, const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                      const SwaOut& fwd, const SwaParams& p) {
  const char* op = "swa_backward";
  const SwaDims d = check_inputs(op, q_in, k_in, v_in, p);
  check_float(op, "dout", dout_in);
  check_shape(op, "dout", dout_in, q_in.shape());
  check_float(op, "fwd.out", fwd.out);
  check_shape(op, "fwd.out", fwd.out, q_in.shape());
  check_float(op, "fwd.lse", fwd.lse);
  check_shape(op, "fwd.lse", fwd.lse, {d.batch, d.q_len, d.q_heads});
  const Device device = common_device(op, {{"q", &q_in}, {"k", &k_in}, {"v", &v_in}, {"dout", &dout_in},
                                           {"fwd.out", &fwd.out}, {"fwd.lse", &fwd.lse}});
  if (device == Device::cuda) {
    // No dtype conversions on the device: everything comes in the dtype of q, lse in f32 (what swa_forward gives).
    check_cuda_inputs(op, q_in, d);
    check_same_dtype(op, "q", q_in, "dout", dout_in);
    check_same_dtype(op, "q", q_in, "fwd.out", fwd.out);
    check_dtype(op, "fwd.lse", fwd.lse, DType::f32);
    Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous(), dout = dout_in.contiguous(),
           out = fwd.out.contiguous(), lse = fwd.lse.contiguous();
    Tensor delta = Tensor::empty({d.batch, d.q_len, d.q_heads}, DType::f32, Device::cuda);
    SwaGrads grads{Tensor::empty(q.shape(), q.dtype(), Device::cuda), Tensor::empty(k.shape(), q.dtype(), Device::cuda),
                   Tensor::empty(v.shape(), q.dtype(), Device::cuda)};
    cuda::dispatch_storage(op, q.dtype(), [&]<class T>() {
      cuda::swa_backward<T>(dout.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(), lse.data<float>(),
                            delta.data<float>(), grads.dq.data<T>(), grads.dk.data<T>(), grads.dv.data<T>(), d,
                            p.scale);
    });
    return grads;
  }
  require_cpu(op, device);
  Tensor q = to_compute(q_in), k = to_compute(k_in), v = to_compute(v_in);
  Tensor dout = to_compute(dout_in).to(q.dtype()), out = to_compute(fwd.out).to(q.dtype()),
         lse = to_compute(fwd.lse).to(q.dtype());
  SwaGrads grads{Tensor::empty(q.shape(), q.dtype()), Tensor::empty(k.shape(), q.dtype()),
                 Tensor::empty(v.shape(), q.dtype())};
  dispatch_float(op, q.dtype(), [&]<class T>() {
    cpu::swa_backward<T>(dout.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(), lse.data<T>(),
                         grads.dq.data<T>(), grads.dk.data<T>(), grads.dv.data<T>(), d, p.scale);
  });
  grads.dq = to_storage(grads.dq, q_in.dtype());
  grads.dk = to_storage(grads.dk, k_in.dtype());
  grads.dv = to_storage(grads.dv, v_in.dtype());
  return grads;
}

}  // namespace hsa::ops

#include "ops/swa_attention.h"

#include "cpu/swa_attention.h"
#include "cuda/dtype_dispatch.h"
#include "cuda/swa_attention.h"
#include "ops/attention_io.h"
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

// The CUDA kernels exist for head dims 32, 64, 128.
void check_cuda_inputs(const char* op, const Tensor& q, const SwaDims& d) {
  check_cuda_attention_dtype(op, q);
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
  const Device device = check_attention_backward(op, q_in, k_in, v_in, dout_in, fwd.out, fwd.lse,
                                                 {d.batch, d.q_len, d.q_heads});
  if (device == Device::cuda) {
    check_cuda_inputs(op, q_in, d);
    const AttentionBackwardInputs in = cuda_attention_backward_inputs(op, q_in, k_in, v_in, dout_in, fwd.out, fwd.lse);
    const Tensor& q = in.q;
    Tensor delta = Tensor::empty({d.batch, d.q_len, d.q_heads}, DType::f32, Device::cuda);
    SwaGrads grads{Tensor::empty(q.shape(), q.dtype(), Device::cuda),
                   Tensor::empty(in.k.shape(), q.dtype(), Device::cuda),
                   Tensor::empty(in.v.shape(), q.dtype(), Device::cuda)};
    cuda::dispatch_storage(op, q.dtype(), [&]<class T>() {
      cuda::swa_backward<T>(in.dout.data<T>(), q.data<T>(), in.k.data<T>(), in.v.data<T>(), in.out.data<T>(),
                            in.lse.data<float>(), delta.data<float>(), grads.dq.data<T>(), grads.dk.data<T>(),
                            grads.dv.data<T>(), d, p.scale);
    });
    return grads;
  }
  require_cpu(op, device);
  const AttentionBackwardInputs in = cpu_attention_backward_inputs(q_in, k_in, v_in, dout_in, fwd.out, fwd.lse);
  const Tensor& q = in.q;
  SwaGrads grads{Tensor::empty(q.shape(), q.dtype()), Tensor::empty(in.k.shape(), q.dtype()),
                 Tensor::empty(in.v.shape(), q.dtype())};
  dispatch_float(op, q.dtype(), [&]<class T>() {
    cpu::swa_backward<T>(in.dout.data<T>(), q.data<T>(), in.k.data<T>(), in.v.data<T>(), in.out.data<T>(),
                         in.lse.data<T>(), grads.dq.data<T>(), grads.dk.data<T>(), grads.dv.data<T>(), d, p.scale);
  });
  attention_grads_to_storage(grads.dq, grads.dk, grads.dv, q_in, k_in, v_in);
  return grads;
}

}  // namespace hsa::ops

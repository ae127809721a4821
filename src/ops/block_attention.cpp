#include "ops/block_attention.h"

#include "cpu/block_attention.h"
#include "cuda/block_attention.h"
#include "cuda/dtype_dispatch.h"
#include "ops/dispatch.h"

#include <cmath>

namespace hsa::ops {

namespace {

BlockAttentionDims check_inputs(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                               double scale) {
  check_float(op, "q", q);
  check_float(op, "k", k);
  check_float(op, "v", v);
  check_ndim(op, "q", q, 4);
  check_shape(op, "k", k, q.shape());
  check_shape(op, "v", v, q.shape());
  check_same_dtype(op, "q", q, "k", k);
  check_same_dtype(op, "q", q, "v", v);
  HSA_CHECK(q.dim(1) >= 1, "{}: blocks must hold at least one row, got 'q' {}", op, shape_str(q.shape()));
  HSA_CHECK(std::isfinite(scale), "{}: scale must be finite, got {}", op, scale);
  return {q.dim(0), q.dim(1), q.dim(2), q.dim(3)};
}

// The CUDA kernels compute f32 and bf16 (f32 accumulation) in their storage dtype; one block of threads holds a
// whole chunk's keys and values in shared memory, which bounds T * D.
void check_cuda_inputs(const char* op, const Tensor& q, const BlockAttentionDims& d) {
  HSA_CHECK(q.dtype() == DType::f32 || q.dtype() == DType::bf16, "{}: no cuda kernel for dtype {} ('q' {}; f32 or bf16)",
            op, dtype_name(q.dtype()), shape_str(q.shape()));
  HSA_CHECK(cuda::block_attention_supported(d), "{}: no cuda kernel for T = {}, D = {} ('q' {}; {})", op,
            d.block_len, d.head_dim, shape_str(q.shape()), cuda::block_attention_limits());
}

}  // namespace

BlockAttentionOut block_attention_forward(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, double scale) {
  const char* op = "block_attention_forward";
  const BlockAttentionDims d = check_inputs(op, q_in, k_in, v_in, scale);
  const Device device = common_device(op, {{"q", &q_in}, {"k", &k_in}, {"v", &v_in}});
  if (device == Device::cuda) {
    check_cuda_inputs(op, q_in, d);
    Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    BlockAttentionOut out{Tensor::empty(q.shape(), q.dtype(), Device::cuda),
                          Tensor::empty({d.blocks, d.block_len, d.heads}, DType::f32, Device::cuda)};
    cuda::dispatch_storage(op, q.dtype(), [&]<class T>() {
      cuda::block_attention_forward<T>(q.data<T>(), k.data<T>(), v.data<T>(), out.out.data<T>(),
                                       out.lse.data<float>(), d, scale);
    });
    return out;
  }
  require_cpu(op, device);
  Tensor q = to_compute(q_in), k = to_compute(k_in), v = to_compute(v_in);
  BlockAttentionOut out{Tensor::empty(q.shape(), q.dtype()), Tensor::empty({d.blocks, d.block_len, d.heads}, q.dtype())};
  dispatch_float(op, q.dtype(), [&]<class T>() {
    cpu::block_attention_forward<T>(q.data<T>(), k.data<T>(), v.data<T>(), out.out.data<T>(), out.lse.data<T>(), d,
                                    scale);
  });
  out.out = to_storage(out.out, q_in.dtype());
  return out;
}

BlockAttentionGrads block_attention_backward(const Tensor& dout_in, const Tensor& q_in, const Tensor& k_in,
                                             const Tensor& v_in, const BlockAttentionOut& fwd, double scale) {
  const char* op = "block_attention_backward";
  const BlockAttentionDims d = check_inputs(op, q_in, k_in, v_in, scale);
  check_float(op, "dout", dout_in);
  check_shape(op, "dout", dout_in, q_in.shape());
  check_float(op, "fwd.out", fwd.out);
  check_shape(op, "fwd.out", fwd.out, q_in.shape());
  check_float(op, "fwd.lse", fwd.lse);
  check_shape(op, "fwd.lse", fwd.lse, {d.blocks, d.block_len, d.heads});
  const Device device = common_device(op, {{"q", &q_in}, {"k", &k_in}, {"v", &v_in}, {"dout", &dout_in},
                                           {"fwd.out", &fwd.out}, {"fwd.lse", &fwd.lse}});
  if (device == Device::cuda) {
    // No dtype conversions on the device: everything comes in the dtype of q, lse in f32 (what the forward gives).
    check_cuda_inputs(op, q_in, d);
    check_same_dtype(op, "q", q_in, "dout", dout_in);
    check_same_dtype(op, "q", q_in, "fwd.out", fwd.out);
    check_dtype(op, "fwd.lse", fwd.lse, DType::f32);
    Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous(), dout = dout_in.contiguous(),
           out = fwd.out.contiguous(), lse = fwd.lse.contiguous();
    BlockAttentionGrads grads{Tensor::empty(q.shape(), q.dtype(), Device::cuda),
                              Tensor::empty(q.shape(), q.dtype(), Device::cuda),
                              Tensor::empty(q.shape(), q.dtype(), Device::cuda)};
    cuda::dispatch_storage(op, q.dtype(), [&]<class T>() {
      cuda::block_attention_backward<T>(dout.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(),
                                        lse.data<float>(), grads.dq.data<T>(), grads.dk.data<T>(), grads.dv.data<T>(),
                                        d, scale);
    });
    return grads;
  }
  require_cpu(op, device);
  Tensor q = to_compute(q_in), k = to_compute(k_in), v = to_compute(v_in);
  Tensor dout = to_compute(dout_in).to(q.dtype()), out = to_compute(fwd.out).to(q.dtype()),
         lse = to_compute(fwd.lse).to(q.dtype());
  BlockAttentionGrads grads{Tensor::empty(q.shape(), q.dtype()), Tensor::empty(q.shape(), q.dtype()),
                            Tensor::empty(q.shape(), q.dtype())};
  dispatch_float(op, q.dtype(), [&]<class T>() {
    cpu::block_attention_backward<T>(dout.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(),
                                     lse.data<T>(), grads.dq.data<T>(), grads.dk.data<T>(), grads.dv.data<T>(), d,
                                     scale);
  });
  grads.dq = to_storage(grads.dq, q_in.dtype());
  grads.dk = to_storage(grads.dk, k_in.dtype());
  grads.dv = to_storage(grads.dv, v_in.dtype());
  return grads;
}

}  // namespace hsa::ops

#include "ops/block_attention.h"

#include "cpu/block_attention.h"
#include "cuda/block_attention.h"
#include "cuda/dtype_dispatch.h"
#include "ops/attention_io.h"
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

// One block of threads holds a whole chunk's keys and values in shared memory, which bounds T * D.
void check_cuda_inputs(const char* op, const Tensor& q, const BlockAttentionDims& d) {
  check_cuda_attention_dtype(op, q);
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
  const Device device = check_attention_backward(op, q_in, k_in, v_in, dout_in, fwd.out, fwd.lse,
                                                 {d.blocks, d.block_len, d.heads});
  if (device == Device::cuda) {
    check_cuda_inputs(op, q_in, d);
    const AttentionBackwardInputs in = cuda_attention_backward_inputs(op, q_in, k_in, v_in, dout_in, fwd.out, fwd.lse);
    const Tensor& q = in.q;
    BlockAttentionGrads grads{Tensor::empty(q.shape(), q.dtype(), Device::cuda),
                              Tensor::empty(q.shape(), q.dtype(), Device::cuda),
                              Tensor::empty(q.shape(), q.dtype(), Device::cuda)};
    cuda::dispatch_storage(op, q.dtype(), [&]<class T>() {
      cuda::block_attention_backward<T>(in.dout.data<T>(), q.data<T>(), in.k.data<T>(), in.v.data<T>(),
                                        in.out.data<T>(), in.lse.data<float>(), grads.dq.data<T>(),
                                        grads.dk.data<T>(), grads.dv.data<T>(), d, scale);
    });
    return grads;
  }
  require_cpu(op, device);
  const AttentionBackwardInputs in = cpu_attention_backward_inputs(q_in, k_in, v_in, dout_in, fwd.out, fwd.lse);
  const Tensor& q = in.q;
  BlockAttentionGrads grads{Tensor::empty(q.shape(), q.dtype()), Tensor::empty(q.shape(), q.dtype()),
                            Tensor::empty(q.shape(), q.dtype())};
  dispatch_float(op, q.dtype(), [&]<class T>() {
    cpu::block_attention_backward<T>(in.dout.data<T>(), q.data<T>(), in.k.data<T>(), in.v.data<T>(), in.out.data<T>(),
                                     in.lse.data<T>(), grads.dq.data<T>(), grads.dk.data<T>(), grads.dv.data<T>(), d,
                                     scale);
  });
  attention_grads_to_storage(grads.dq, grads.dk, grads.dv, q_in, k_in, v_in);
  return grads;
}

}  // namespace hsa::ops

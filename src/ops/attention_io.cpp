#include "ops/attention_io.h"

#include "ops/dispatch.h"

namespace hsa::ops {

void check_cuda_attention_dtype(const char* op, const Tensor& q) {
  HSA_CHECK(q.dtype() == DType::f32 || q.dtype() == DType::bf16, "{}: no cuda kernel for dtype {} ('q' {}; f32 or bf16)",
            op, dtype_name(q.dtype()), shape_str(q.shape()));
}

Device check_attention_backward(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout,
                                const Tensor& out, const Tensor& lse, const Shape& lse_shape) {
  check_float(op, "dout", dout);
  check_shape(op, "dout", dout, q.shape());
  check_float(op, "fwd.out", out);
  check_shape(op, "fwd.out", out, q.shape());
  check_float(op, "fwd.lse", lse);
  check_shape(op, "fwd.lse", lse, lse_shape);
  return common_device(op, {{"q", &q}, {"k", &k}, {"v", &v}, {"dout", &dout}, {"fwd.out", &out}, {"fwd.lse", &lse}});
}

AttentionBackwardInputs cuda_attention_backward_inputs(const char* op, const Tensor& q, const Tensor& k,
                                                       const Tensor& v, const Tensor& dout, const Tensor& out,
                                                       const Tensor& lse) {
  check_same_dtype(op, "q", q, "dout", dout);
  check_same_dtype(op, "q", q, "fwd.out", out);
  check_dtype(op, "fwd.lse", lse, DType::f32);
  return {q.contiguous(), k.contiguous(), v.contiguous(), dout.contiguous(), out.contiguous(), lse.contiguous()};
}

AttentionBackwardInputs cpu_attention_backward_inputs(const Tensor& q_in, const Tensor& k, const Tensor& v,
                                                      const Tensor& dout, const Tensor& out, const Tensor& lse) {
  Tensor q = to_compute(q_in);
  const DType ct = q.dtype();
  return {q, to_compute(k), to_compute(v), to_compute(dout).to(ct), to_compute(out).to(ct), to_compute(lse).to(ct)};
}

void attention_grads_to_storage(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& q, const Tensor& k,
                                const Tensor& v) {
  dq = to_storage(dq, q.dtype());
  dk = to_storage(dk, k.dtype());
  dv = to_storage(dv, v.dtype());
}

}  // namespace hsa::ops

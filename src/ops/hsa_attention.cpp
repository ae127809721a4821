#include "ops/hsa_attention.h"

#include "cpu/hsa_attention.h"
#include "ops/dispatch.h"

namespace hsa::ops {

namespace {
cpu::HsaShape check_inputs(const char* op, const Tensor& q, const Tensor& mem_k, const Tensor& mem_v,
                           const Tensor& indices, const Tensor& weights, double scale) {
  check_float(op, "q", q);
  check_ndim(op, "q", q, 4);
  check_ndim(op, "mem_k", mem_k, 5);
  check_shape(op, "mem_v", mem_v, mem_k.shape());
  check_same_dtype(op, "q", q, "mem_k", mem_k);
  check_same_dtype(op, "q", q, "mem_v", mem_v);
  check_same_dtype(op, "q", q, "weights", weights);
  check_dtype(op, "indices", indices, DType::i32);
  check_ndim(op, "indices", indices, 4);
  int64_t B = q.dim(0), L = q.dim(1), HQ = q.dim(2), D = q.dim(3);
  int64_t C = mem_k.dim(1), S = mem_k.dim(2), H = mem_k.dim(3), K = indices.dim(3);
  HSA_CHECK(mem_k.dim(0) == B && mem_k.dim(4) == D, "{}: 'mem_k' {} does not match 'q' {} (batch and head dim)", op,
            shape_str(mem_k.shape()), shape_str(q.shape()));
  HSA_CHECK(S > 0, "{}: chunk size (mem_k axis 2) must be positive, got {}", op, S);
  HSA_CHECK(K > 0, "{}: top-k (indices axis 3) must be positive, got {}", op, K);
  HSA_CHECK(H > 0 && HQ % H == 0, "{}: {} query heads are not a multiple of {} KV heads", op, HQ, H);
  check_shape(op, "indices", indices, {B, L, H, K});
  check_shape(op, "weights", weights, {B, L, H, K});
  HSA_CHECK(scale > 0, "{}: scale must be positive, got {}", op, scale);
  require_cpu(op, common_device(op, {{"q", &q}, {"mem_k", &mem_k}, {"mem_v", &mem_v}, {"indices", &indices},
                                     {"weights", &weights}}));
  Tensor idx = indices.contiguous();
  const int32_t* p = idx.data<int32_t>();
  for (int64_t i = 0; i < idx.numel(); ++i)
    HSA_CHECK(p[i] >= -1 && p[i] < C, "{}: chunk index {} in slot {} is outside [-1, {})", op, p[i], i, C);
  return cpu::HsaShape{B, L, HQ, H, D, C, S, K, scale};
}
}  // namespace

HsaOut hsa_attention_forward(const Tensor& q_in, const Tensor& mem_k_in, const Tensor& mem_v_in,
                             const Tensor& indices_in, const Tensor& weights_in, double scale) {
  const char* op = "hsa_attention_forward";
  cpu::HsaShape s = check_inputs(op, q_in, mem_k_in, mem_v_in, indices_in, weights_in, scale);
  Tensor q = to_compute(q_in), mk = to_compute(mem_k_in), mv = to_compute(mem_v_in), w = to_compute(weights_in),
         idx = indices_in.contiguous();
  HsaOut out{Tensor::empty(q.shape(), q.dtype()), Tensor::empty({s.B, s.L, s.HQ, s.K}, q.dtype())};
  dispatch_float(op, q.dtype(), [&]<class T>() {
    cpu::hsa_attention_forward<T>(q.data<T>(), mk.data<T>(), mv.data<T>(), idx.data<int32_t>(), w.data<T>(),
                                  out.out.data<T>(), out.lse.data<T>(), s);
  });
  out.out = to_storage(out.out, q_in.dtype());
  return out;
}

HsaGrads hsa_attention_backward(const Tensor& dout_in, const Tensor& q_in, const Tensor& mem_k_in,
                                const Tensor& mem_v_in, const Tensor& indices_in, const Tensor& weights_in,
                                const HsaOut& fwd, double scale) {
  const char* op = "hsa_attention_backward";
  cpu::HsaShape s = check_inputs(op, q_in, mem_k_in, mem_v_in, indices_in, weights_in, scale);
  check_shape(op, "dout", dout_in, q_in.shape());
  check_shape(op, "fwd.lse", fwd.lse, {s.B, s.L, s.HQ, s.K});
  Tensor q = to_compute(q_in), mk = to_compute(mem_k_in), mv = to_compute(mem_v_in), w = to_compute(weights_in),
         idx = indices_in.contiguous(), dout = to_compute(dout_in).to(q.dtype()), lse = to_compute(fwd.lse).to(q.dtype());
  HsaGrads g{Tensor::empty(q.shape(), q.dtype()), Tensor::empty(mk.shape(), q.dtype()),
             Tensor::empty(mv.shape(), q.dtype()), Tensor::empty(w.shape(), q.dtype())};
  dispatch_float(op, q.dtype(), [&]<class T>() {
    cpu::hsa_attention_backward<T>(dout.data<T>(), q.data<T>(), mk.data<T>(), mv.data<T>(), idx.data<int32_t>(),
                                   w.data<T>(), lse.data<T>(), g.dq.data<T>(), g.dmem_k.data<T>(), g.dmem_v.data<T>(),
                                   g.dweights.data<T>(), s);
  });
  g.dq = to_storage(g.dq, q_in.dtype());
  g.dmem_k = to_storage(g.dmem_k, mem_k_in.dtype());
  g.dmem_v = to_storage(g.dmem_v, mem_v_in.dtype());
  g.dweights = to_storage(g.dweights, weights_in.dtype());
  return g;
}

}  // namespace hsa::ops

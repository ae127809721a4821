#include "ops/swa_attention.h"

#include "cpu/swa_attention.h"
#include "ops/dispatch.h"

namespace hsa::ops {

namespace {
cpu::SwaShape check_inputs(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const SwaParams& p) {
  check_float(op, "q", q);
  check_ndim(op, "q", q, 4);
  check_ndim(op, "k", k, 4);
  check_same_dtype(op, "q", q, "k", k);
  check_same_dtype(op, "q", q, "v", v);
  check_shape(op, "v", v, k.shape());
  HSA_CHECK(k.dim(0) == q.dim(0) && k.dim(3) == q.dim(3),
            "{}: 'k' {} does not match 'q' {} (batch and head dim must agree)", op, shape_str(k.shape()),
            shape_str(q.shape()));
  HSA_CHECK(k.dim(2) > 0 && q.dim(2) % k.dim(2) == 0, "{}: {} query heads are not a multiple of {} KV heads", op,
            q.dim(2), k.dim(2));
  HSA_CHECK(p.window >= 1, "{}: window must be >= 1, got {}", op, p.window);
  HSA_CHECK(p.q_start >= 0 && p.k_start >= 0, "{}: negative start positions q_start={} k_start={}", op, p.q_start,
            p.k_start);
  require_cpu(op, common_device(op, {{"q", &q}, {"k", &k}, {"v", &v}}));
  return cpu::SwaShape{q.dim(0), q.dim(1), k.dim(1), q.dim(2), k.dim(2), q.dim(3), p.window, p.q_start, p.k_start,
                       p.scale};
}
}  // namespace

SwaOut swa_forward(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const SwaParams& p) {
  const char* op = "swa_forward";
  cpu::SwaShape s = check_inputs(op, q_in, k_in, v_in, p);
  Tensor q = to_compute(q_in), k = to_compute(k_in), v = to_compute(v_in);
  SwaOut out{Tensor::empty(q.shape(), q.dtype()), Tensor::empty({s.B, s.Lq, s.HQ}, q.dtype())};
  dispatch_float(op, q.dtype(), [&]<class T>() {
    cpu::swa_forward<T>(q.data<T>(), k.data<T>(), v.data<T>(), out.out.data<T>(), out.lse.data<T>(), s);
  });
  out.out = to_storage(out.out, q_in.dtype());
  return out;
}

SwaGrads swa_backward(const Tensor& dout_in, const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                      const SwaOut& fwd, const SwaParams& p) {
  const char* op = "swa_backward";
  cpu::SwaShape s = check_inputs(op, q_in, k_in, v_in, p);
  check_shape(op, "dout", dout_in, q_in.shape());
  check_shape(op, "fwd.out", fwd.out, q_in.shape());
  check_shape(op, "fwd.lse", fwd.lse, {s.B, s.Lq, s.HQ});
  Tensor q = to_compute(q_in), k = to_compute(k_in), v = to_compute(v_in);
  Tensor dout = to_compute(dout_in).to(q.dtype()), out = to_compute(fwd.out).to(q.dtype()),
         lse = to_compute(fwd.lse).to(q.dtype());
  SwaGrads g{Tensor::empty(q.shape(), q.dtype()), Tensor::empty(k.shape(), q.dtype()),
             Tensor::empty(v.shape(), q.dtype())};
  dispatch_float(op, q.dtype(), [&]<class T>() {
    cpu::swa_backward<T>(dout.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(), lse.data<T>(),
                         g.dq.data<T>(), g.dk.data<T>(), g.dv.data<T>(), s);
  });
  g.dq = to_storage(g.dq, q_in.dtype());
  g.dk = to_storage(g.dk, k_in.dtype());
  g.dv = to_storage(g.dv, v_in.dtype());
  return g;
}

}  // namespace hsa::ops

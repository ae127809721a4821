#include "ops/moe.h"

#include "cpu/moe.h"
#include "cuda/dtype_dispatch.h"
#include "cuda/moe.h"
#include "ops/dispatch.h"

#include <cmath>

namespace hsa::ops {

namespace {

// Validates the inputs and returns the sizes; *device = where they all are.
MoeDims check_inputs(const char* op, const Tensor& x, const MoeWeights& w, const MoeParams& p, Device* device) {
  check_float(op, "x", x);
  check_ndim(op, "x", x, 2);
  MoeDims d{x.dim(0), x.dim(1), 0, 0, p.topk, 0, 0};
  check_ndim(op, "router", w.router, 2);
  d.num_experts = w.router.dim(0);
  HSA_CHECK(d.num_experts >= 1, "{}: 'router' has shape {}, expected at least one expert", op,
            shape_str(w.router.shape()));
  check_shape(op, "router", w.router, {d.num_experts, d.dm});
  check_ndim(op, "w_gate", w.w_gate, 3);
  d.ffn = w.w_gate.dim(1);
  check_shape(op, "w_gate", w.w_gate, {d.num_experts, d.ffn, d.dm});
  check_shape(op, "w_up", w.w_up, {d.num_experts, d.ffn, d.dm});
  check_shape(op, "w_down", w.w_down, {d.num_experts, d.dm, d.ffn});
  HSA_CHECK(p.topk >= 1 && p.topk <= d.num_experts, "{}: topk must be in [1, E = {}], got {}", op, d.num_experts,
            p.topk);
  HSA_CHECK(std::isfinite(p.aux_loss_coef), "{}: aux_loss_coef must be finite, got {}", op, p.aux_loss_coef);
  int shared = int(w.shared_gate.defined()) + int(w.shared_up.defined()) + int(w.shared_down.defined());
  HSA_CHECK(shared == 0 || shared == 3,
            "{}: shared expert weights are partially defined (shared_gate {}, shared_up {}, shared_down {}); "
            "define all three or none",
            op, w.shared_gate.defined() ? "defined" : "undefined", w.shared_up.defined() ? "defined" : "undefined",
            w.shared_down.defined() ? "defined" : "undefined");
  if (shared == 3) {
    check_ndim(op, "shared_gate", w.shared_gate, 3);
    d.num_shared = w.shared_gate.dim(0);
    d.ffn_shared = w.shared_gate.dim(1);
    check_shape(op, "shared_gate", w.shared_gate, {d.num_shared, d.ffn_shared, d.dm});
    check_shape(op, "shared_up", w.shared_up, {d.num_shared, d.ffn_shared, d.dm});
    check_shape(op, "shared_down", w.shared_down, {d.num_shared, d.dm, d.ffn_shared});
  }
  check_same_dtype(op, "x", x, "router", w.router);
  check_same_dtype(op, "x", x, "w_gate", w.w_gate);
  check_same_dtype(op, "x", x, "w_up", w.w_up);
  check_same_dtype(op, "x", x, "w_down", w.w_down);
  if (shared == 3) {
    check_same_dtype(op, "x", x, "shared_gate", w.shared_gate);
    check_same_dtype(op, "x", x, "shared_up", w.shared_up);
    check_same_dtype(op, "x", x, "shared_down", w.shared_down);
  }
  *device = common_device(
      op, {{"x", &x}, {"router", &w.router}, {"w_gate", &w.w_gate}, {"w_up", &w.w_up}, {"w_down", &w.w_down}});
  if (shared == 3)  // x first, so a shared weight elsewhere is reported against x
    common_device(
        op, {{"x", &x}, {"shared_gate", &w.shared_gate}, {"shared_up", &w.shared_up}, {"shared_down", &w.shared_down}});
  return d;
}

// The forward's saved state against this call's inputs: shapes from them; probs and gates in the compute dtype
// (f32 for bf16 x); the saved pre-activations in the compute dtype on the cpu, in x's own dtype on cuda; all on
// x's device, like dy.
void check_forward_state(const char* op, const MoeOut& fwd, const MoeDims& d, const Tensor& x, const Tensor& dy,
                         Device device) {
  const DType ct = x.dtype() == DType::bf16 ? DType::f32 : x.dtype();
  const DType act = device == Device::cuda ? x.dtype() : ct;
  check_shape(op, "fwd.probs", fwd.probs, {d.n, d.num_experts});
  check_dtype(op, "fwd.probs", fwd.probs, ct);
  check_shape(op, "fwd.experts", fwd.experts, {d.n, d.topk});
  check_dtype(op, "fwd.experts", fwd.experts, DType::i32);
  check_shape(op, "fwd.gates", fwd.gates, {d.n, d.topk});
  check_dtype(op, "fwd.gates", fwd.gates, ct);
  HSA_CHECK(fwd.saved.size() == 2, "{}: 'fwd.saved' holds {} tensors, expected 2 (from moe_forward)", op,
            fwd.saved.size());
  check_shape(op, "fwd.saved[0]", fwd.saved[0], {d.act_elements()});
  check_shape(op, "fwd.saved[1]", fwd.saved[1], {d.act_elements()});
  check_dtype(op, "fwd.saved[0]", fwd.saved[0], act);
  check_dtype(op, "fwd.saved[1]", fwd.saved[1], act);
  common_device(op, {{"x", &x},
                     {"dy", &dy},
                     {"fwd.probs", &fwd.probs},
                     {"fwd.experts", &fwd.experts},
                     {"fwd.gates", &fwd.gates},
                     {"fwd.saved[0]", &fwd.saved[0]},
                     {"fwd.saved[1]", &fwd.saved[1]}});
}

MoeWeights weights_to_compute(const MoeWeights& w) {
  MoeWeights c{to_compute(w.router), to_compute(w.w_gate), to_compute(w.w_up), to_compute(w.w_down), {}, {}, {}};
  if (w.shared_gate.defined()) {
    c.shared_gate = to_compute(w.shared_gate);
    c.shared_up = to_compute(w.shared_up);
    c.shared_down = to_compute(w.shared_down);
  }
  return c;
}

// Per-expert pointers into the [E, ...] / [NS, ...] weight stacks, routed experts first; grads when given.
template <class T>
std::vector<cpu::MoeExpert<T>> expert_list(const MoeDims& d, const MoeWeights& w, const MoeWeights* dw) {
  std::vector<cpu::MoeExpert<T>> list;
  auto add = [&](const Tensor& g, const Tensor& u, const Tensor& down, const MoeWeights* grads, bool shared,
                 int64_t count, int64_t ffn) {
    for (int64_t e = 0; e < count; ++e) {
      int64_t stride = ffn * d.dm;
      cpu::MoeExpert<T> ex{g.data<T>() + e * stride, u.data<T>() + e * stride, down.data<T>() + e * stride, ffn};
      if (grads) {
        ex.d_gate = (shared ? grads->shared_gate : grads->w_gate).data<T>() + e * stride;
        ex.d_up = (shared ? grads->shared_up : grads->w_up).data<T>() + e * stride;
        ex.d_down = (shared ? grads->shared_down : grads->w_down).data<T>() + e * stride;
      }
      list.push_back(ex);
    }
  };
  add(w.w_gate, w.w_up, w.w_down, dw, false, d.num_experts, d.ffn);
  if (d.num_shared > 0) add(w.shared_gate, w.shared_up, w.shared_down, dw, true, d.num_shared, d.ffn_shared);
  return list;
}

MoeWeights contiguous_weights(const MoeWeights& w) {
  MoeWeights c{w.router.contiguous(), w.w_gate.contiguous(), w.w_up.contiguous(), w.w_down.contiguous(), {}, {}, {}};
  if (w.shared_gate.defined()) {
    c.shared_gate = w.shared_gate.contiguous();
    c.shared_up = w.shared_up.contiguous();
    c.shared_down = w.shared_down.contiguous();
  }
  return c;
}

template <class T>
cuda::MoeDeviceWeights<T> device_weights(const MoeWeights& w) {
  cuda::MoeDeviceWeights<T> p{w.router.data<T>(), w.w_gate.data<T>(), w.w_up.data<T>(), w.w_down.data<T>()};
  if (w.shared_gate.defined()) {
    p.shared_gate = w.shared_gate.data<T>();
    p.shared_up = w.shared_up.data<T>();
    p.shared_down = w.shared_down.data<T>();
  }
  return p;
}

// Outputs as on the cpu, with probs and gates in f32 and y in x's dtype.
MoeOut forward_cuda(const char* op, const MoeDims& d, const Tensor& x_in, const MoeWeights& w_in, const MoeParams& p) {
  Tensor x = x_in.contiguous();
  MoeWeights w = contiguous_weights(w_in);
  const DType st = x.dtype();
  MoeOut out{Tensor::empty({d.n, d.dm}, st, Device::cuda),
             Tensor::empty({1}, DType::f64, Device::cuda),
             Tensor::empty({d.n, d.num_experts}, DType::f32, Device::cuda),
             Tensor::empty({d.n, d.topk}, DType::i32, Device::cuda),
             Tensor::empty({d.n, d.topk}, DType::f32, Device::cuda),
             {Tensor::empty({d.act_elements()}, st, Device::cuda), Tensor::empty({d.act_elements()}, st, Device::cuda)}};
  cuda::dispatch_storage(op, st, [&]<class T>() {
    cuda::moe_forward<T>(x.data<T>(), device_weights<T>(w), d, p.aux_loss_coef, out.y.data<T>(),
                         out.probs.data<float>(), out.experts.data<int32_t>(), out.gates.data<float>(),
                         out.saved[0].data<T>(), out.saved[1].data<T>(), out.aux_loss.data<double>());
  });
  return out;
}

// Gradients in x's dtype (the weights share it). fwd.experts is validated on the device.
MoeGrads backward_cuda(const char* op, const MoeDims& d, const Tensor& dy_in, double daux, const Tensor& x_in,
                       const MoeWeights& w_in, const MoeParams& p, const MoeOut& fwd) {
  check_same_dtype(op, "x", x_in, "dy", dy_in);
  Tensor x = x_in.contiguous(), dy = dy_in.contiguous();
  MoeWeights w = contiguous_weights(w_in);
  Tensor probs = fwd.probs.contiguous(), experts = fwd.experts.contiguous(), gates = fwd.gates.contiguous();
  Tensor act_gate = fwd.saved[0].contiguous(), act_up = fwd.saved[1].contiguous();
  const DType st = x.dtype();
  MoeGrads g;
  g.dx = Tensor::empty({d.n, d.dm}, st, Device::cuda);
  g.dw.router = Tensor::empty(w.router.shape(), st, Device::cuda);
  g.dw.w_gate = Tensor::empty(w.w_gate.shape(), st, Device::cuda);
  g.dw.w_up = Tensor::empty(w.w_up.shape(), st, Device::cuda);
  g.dw.w_down = Tensor::empty(w.w_down.shape(), st, Device::cuda);
  if (w.shared_gate.defined()) {
    g.dw.shared_gate = Tensor::empty(w.shared_gate.shape(), st, Device::cuda);
    g.dw.shared_up = Tensor::empty(w.shared_up.shape(), st, Device::cuda);
    g.dw.shared_down = Tensor::empty(w.shared_down.shape(), st, Device::cuda);
  }
  cuda::dispatch_storage(op, st, [&]<class T>() {
    cuda::MoeDeviceGrads<T> dw{g.dw.router.data<T>(), g.dw.w_gate.data<T>(), g.dw.w_up.data<T>(),
                               g.dw.w_down.data<T>()};
    if (g.dw.shared_gate.defined()) {
      dw.shared_gate = g.dw.shared_gate.data<T>();
      dw.shared_up = g.dw.shared_up.data<T>();
      dw.shared_down = g.dw.shared_down.data<T>();
    }
    cuda::moe_backward<T>(dy.data<T>(), daux * p.aux_loss_coef, x.data<T>(), device_weights<T>(w), d,
                          probs.data<float>(), experts.data<int32_t>(), gates.data<float>(), act_gate.data<T>(),
                          act_up.data<T>(), g.dx.data<T>(), dw);
  });
  return g;
}

}  // namespace

MoeOut moe_forward(const Tensor& x_in, const MoeWeights& w_in, const MoeParams& p) {
  const char* op = "moe_forward";
  Device device = Device::cpu;
  MoeDims d = check_inputs(op, x_in, w_in, p, &device);
  if (device == Device::cuda) return forward_cuda(op, d, x_in, w_in, p);
  Tensor x = to_compute(x_in);
  MoeWeights w = weights_to_compute(w_in);
  DType ct = x.dtype();
  MoeOut out{Tensor::empty({d.n, d.dm}, ct),
             {},
             Tensor::empty({d.n, d.num_experts}, ct),
             Tensor::empty({d.n, d.topk}, DType::i32),
             Tensor::empty({d.n, d.topk}, ct),
             {Tensor::empty({d.act_elements()}, ct), Tensor::empty({d.act_elements()}, ct)}};
  dispatch_float(op, ct, [&]<class T>() {
    cpu::moe_router_forward<T>(x.data<T>(), w.router.data<T>(), out.probs.data<T>(), out.experts.data<int32_t>(),
                               out.gates.data<T>(), d.n, d.dm, d.num_experts, d.topk);
    const double balance =
        cpu::moe_load_balance_loss<T>(out.probs.data<T>(), out.experts.data<int32_t>(), d.n, d.num_experts, d.topk);
    out.aux_loss = Tensor::from_values({p.aux_loss_coef * balance}, {1}, DType::f64);
    cpu::MoeRouting routing = cpu::moe_build_routing(out.experts.data<int32_t>(), d.n, d.num_experts, d.topk,
                                                     d.num_shared, d.ffn, d.ffn_shared);
    cpu::moe_experts_forward<T>(x.data<T>(), expert_list<T>(d, w, nullptr), routing, out.gates.data<T>(),
                                out.saved[0].data<T>(), out.saved[1].data<T>(), out.y.data<T>(), d.dm);
  });
  out.y = to_storage(out.y, x_in.dtype());
  return out;
}

MoeGrads moe_backward(const Tensor& dy_in, double daux, const Tensor& x_in, const MoeWeights& w_in, const MoeParams& p,
                      const MoeOut& fwd) {
  const char* op = "moe_backward";
  Device device = Device::cpu;
  MoeDims d = check_inputs(op, x_in, w_in, p, &device);
  check_shape(op, "dy", dy_in, {d.n, d.dm});
  check_float(op, "dy", dy_in);
  HSA_CHECK(std::isfinite(daux), "{}: daux must be finite, got {}", op, daux);
  check_forward_state(op, fwd, d, x_in, dy_in, device);
  if (device == Device::cuda) return backward_cuda(op, d, dy_in, daux, x_in, w_in, p, fwd);
  Tensor x = to_compute(x_in);
  DType ct = x.dtype();
  Tensor dy = to_compute(dy_in).to(ct);
  Tensor probs = fwd.probs.contiguous(), experts = fwd.experts.contiguous(), gates = fwd.gates.contiguous();
  const int32_t* chosen = experts.data<int32_t>();
  for (int64_t i = 0; i < d.n * d.topk; ++i)
    HSA_CHECK(chosen[i] >= 0 && chosen[i] < d.num_experts,
              "{}: 'fwd.experts' routes token {} to expert {}, outside [0, {})", op, i / d.topk, chosen[i],
              d.num_experts);
  Tensor act_gate = fwd.saved[0].contiguous(), act_up = fwd.saved[1].contiguous();
  MoeWeights w = weights_to_compute(w_in);

  MoeGrads g;
  g.dx = Tensor::empty({d.n, d.dm}, ct);
  g.dw.router = Tensor::empty(w.router.shape(), ct);
  g.dw.w_gate = Tensor::empty(w.w_gate.shape(), ct);
  g.dw.w_up = Tensor::empty(w.w_up.shape(), ct);
  g.dw.w_down = Tensor::empty(w.w_down.shape(), ct);
  if (w.shared_gate.defined()) {
    g.dw.shared_gate = Tensor::empty(w.shared_gate.shape(), ct);
    g.dw.shared_up = Tensor::empty(w.shared_up.shape(), ct);
    g.dw.shared_down = Tensor::empty(w.shared_down.shape(), ct);
  }
  Tensor dgates = Tensor::empty({d.n, d.topk}, ct);
  dispatch_float(op, ct, [&]<class T>() {
    cpu::MoeRouting routing =
        cpu::moe_build_routing(experts.data<int32_t>(), d.n, d.num_experts, d.topk, d.num_shared, d.ffn, d.ffn_shared);
    cpu::moe_experts_backward<T>(dy.data<T>(), x.data<T>(), expert_list<T>(d, w, &g.dw), routing, gates.data<T>(),
                                 act_gate.data<T>(), act_up.data<T>(), dgates.data<T>(), g.dx.data<T>(), d.dm);
    cpu::moe_router_backward<T>(x.data<T>(), w.router.data<T>(), probs.data<T>(), experts.data<int32_t>(),
                                gates.data<T>(), dgates.data<T>(), daux * p.aux_loss_coef, g.dx.data<T>(),
                                g.dw.router.data<T>(), d.n, d.dm, d.num_experts, d.topk);
  });
  g.dx = to_storage(g.dx, x_in.dtype());
  g.dw.router = to_storage(g.dw.router, w_in.router.dtype());
  g.dw.w_gate = to_storage(g.dw.w_gate, w_in.w_gate.dtype());
  g.dw.w_up = to_storage(g.dw.w_up, w_in.w_up.dtype());
  g.dw.w_down = to_storage(g.dw.w_down, w_in.w_down.dtype());
  if (g.dw.shared_gate.defined()) {
    g.dw.shared_gate = to_storage(g.dw.shared_gate, w_in.shared_gate.dtype());
    g.dw.shared_up = to_storage(g.dw.shared_up, w_in.shared_up.dtype());
    g.dw.shared_down = to_storage(g.dw.shared_down, w_in.shared_down.dtype());
  }
  return g;
}

}  // namespace hsa::ops

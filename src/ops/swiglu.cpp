#include "ops/swiglu.h"

#include "cpu/swiglu.h"
#include "cuda/dtype_dispatch.h"
#include "cuda/swiglu.h"
#include "ops/dispatch.h"

namespace hsa::ops {

Tensor swiglu_forward(const Tensor& gate_in, const Tensor& up_in) {
  const char* op = "swiglu_forward";
  check_float(op, "gate", gate_in);
  check_shape(op, "up", up_in, gate_in.shape());
  check_same_dtype(op, "gate", gate_in, "up", up_in);
  Device device = common_device(op, {{"gate", &gate_in}, {"up", &up_in}});
  if (device == Device::cuda) {
    Tensor gate = gate_in.contiguous(), up = up_in.contiguous();
    Tensor out = Tensor::empty(gate.shape(), gate.dtype(), Device::cuda);
    cuda::dispatch_storage(op, gate.dtype(), [&]<class T>() {
      cuda::swiglu_forward<T>(gate.data<T>(), up.data<T>(), out.data<T>(), out.numel());
    });
    return out;
  }
  require_cpu(op, device);
  Tensor gate = to_compute(gate_in), up = to_compute(up_in);
  Tensor out = Tensor::empty(gate.shape(), gate.dtype());
  dispatch_float(op, gate.dtype(), [&]<class T>() {
    cpu::swiglu_forward<T>(gate.data<T>(), up.data<T>(), out.data<T>(), out.numel());
  });
  return to_storage(out, gate_in.dtype());
}

SwigluGrads swiglu_backward(const Tensor& dout_in, const Tensor& gate_in, const Tensor& up_in) {
  const char* op = "swiglu_backward";
  check_float(op, "gate", gate_in);
  check_shape(op, "up", up_in, gate_in.shape());
  check_shape(op, "dout", dout_in, gate_in.shape());
  check_same_dtype(op, "gate", gate_in, "up", up_in);
  check_same_dtype(op, "gate", gate_in, "dout", dout_in);
  Device device = common_device(op, {{"dout", &dout_in}, {"gate", &gate_in}, {"up", &up_in}});
  if (device == Device::cuda) {
    Tensor dout = dout_in.contiguous(), gate = gate_in.contiguous(), up = up_in.contiguous();
    SwigluGrads g{Tensor::empty(gate.shape(), gate.dtype(), Device::cuda),
                  Tensor::empty(gate.shape(), gate.dtype(), Device::cuda)};
    cuda::dispatch_storage(op, gate.dtype(), [&]<class T>() {
      cuda::swiglu_backward<T>(dout.data<T>(), gate.data<T>(), up.data<T>(), g.dgate.data<T>(), g.dup.data<T>(),
                               gate.numel());
    });
    return g;
  }
  require_cpu(op, device);
  Tensor dout = to_compute(dout_in), gate = to_compute(gate_in), up = to_compute(up_in);
  SwigluGrads g{Tensor::empty(gate.shape(), gate.dtype()), Tensor::empty(gate.shape(), gate.dtype())};
  dispatch_float(op, gate.dtype(), [&]<class T>() {
    cpu::swiglu_backward<T>(dout.data<T>(), gate.data<T>(), up.data<T>(), g.dgate.data<T>(), g.dup.data<T>(),
                            gate.numel());
  });
  g.dgate = to_storage(g.dgate, gate_in.dtype());
  g.dup = to_storage(g.dup, gate_in.dtype());
  return g;
}

}  // namespace hsa::ops

#include "ops/hsa_attention.h"

#include "cpu/hsa_attention.h"
#include "cuda/hsa_attention.h"
#include "ops/dispatch.h"

#include <cmath>
#include <utility>

namespace hsa::ops {

namespace {

HsaDims check_inputs(const char* op, const Tensor& q, const Tensor& mem_k, const Tensor& mem_v,
                     const Tensor& indices, const Tensor& weights, double scale, Device* device) {
  check_float(op, "q", q);
  check_ndim(op, "q", q, 4);
  check_float(op, "mem_k", mem_k);
  check_ndim(op, "mem_k", mem_k, 5);
  HsaDims d;
  d.batch = q.dim(0);
  d.len = q.dim(1);
  d.q_heads = q.dim(2);
  d.head_dim = q.dim(3);
  d.chunks = mem_k.dim(1);
  d.chunk_size = mem_k.dim(2);
  d.kv_heads = mem_k.dim(3);
  check_shape(op, "mem_k", mem_k, {d.batch, d.chunks, d.chunk_size, d.kv_heads, d.head_dim});
  check_shape(op, "mem_v", mem_v, mem_k.shape());
  HSA_CHECK(d.chunk_size >= 1, "{}: chunk size S must be at least 1, got 'mem_k' of shape {}", op,
            shape_str(mem_k.shape()));
  HSA_CHECK(d.head_dim >= 1, "{}: head dim D must be at least 1, got 'q' of shape {}", op, shape_str(q.shape()));
  HSA_CHECK(d.kv_heads >= 1 && d.q_heads % d.kv_heads == 0,
            "{}: query heads HQ = {} (from 'q' {}) must be a multiple of KV heads H = {} (from 'mem_k' {})", op,
            d.q_heads, shape_str(q.shape()), d.kv_heads, shape_str(mem_k.shape()));
  check_dtype(op, "indices", indices, DType::i32);
  check_ndim(op, "indices", indices, 4);
  d.topk = indices.dim(3);
  HSA_CHECK(d.topk >= 1, "{}: 'indices' has shape {}: top-K must be at least 1", op, shape_str(indices.shape()));
  check_shape(op, "indices", indices, {d.batch, d.len, d.kv_heads, d.topk});
  check_float(op, "weights", weights);
  check_shape(op, "weights", weights, indices.shape());
  check_same_dtype(op, "q", q, "mem_k", mem_k);
  check_same_dtype(op, "q", q, "mem_v", mem_v);
  HSA_CHECK(std::isfinite(scale), "{}: scale must be finite, got {}", op, scale);
  *device = common_device(op, {{"q", &q}, {"mem_k", &mem_k}, {"mem_v", &mem_v}, {"indices", &indices},
                                {"weights", &weights}});
  if (*device == Device::cuda) cuda::hsa_attention_check_supported(op, q.dtype(), d);
  return d;
}

[[noreturn]] void fail_bad_index(const char* op, int64_t f, int32_t value, const HsaDims& d) {
  fail("{}: 'indices'[b={}, t={}, r={}, i={}] = {} is outside [-1, C = {}) (C from 'mem_k' {})", op,
       f / (d.topk * d.kv_heads * d.len), (f / (d.topk * d.kv_heads)) % d.len, (f / d.topk) % d.kv_heads, f % d.topk,
       value, d.chunks,
       fmt::format("[{}, {}, {}, {}, {}]", d.batch, d.chunks, d.chunk_size, d.kv_heads, d.head_dim));
}

// Every index in [-1, C): reported with its position, since a bad one would read outside the memory. (The CUDA
// path validates on the device instead, without waiting for it: the kernels skip a bad index and report it through
// the deferred input-error record, so it throws at the next cuda::synchronize() with its value and flat index.)
void check_indices(const char* op, const Tensor& indices, const HsaDims& d) {
  const int32_t* idx = indices.data<int32_t>();
  const int64_t n = indices.numel();
  for (int64_t f = 0; f < n; ++f)
    if (idx[f] < -1 || idx[f] >= d.chunks) fail_bad_index(op, f, idx[f], d);
}

HsaOut forward_cuda(const Tensor& q_in, const Tensor& mem_k_in, const Tensor& mem_v_in,
                    const Tensor& indices_in, const Tensor& weights_in, double scale, const HsaDims& d,
                    HsaRouting* routing) {
  const DType dt = q_in.dtype();
  Tensor q = q_in.contiguous(), mem_k = mem_k_in.contiguous(), mem_v = mem_v_in.contiguous();
  // The kernels read the chunk weights in f32, whatever their dtype.
  Tensor indices = indices_in.contiguous(), weights = weights_in.contiguous().to(DType::f32);
  HsaOut out{Tensor::empty(q.shape(), dt, Device::cuda),
             Tensor::empty({d.batch, d.len, d.q_heads, d.topk}, DType::f32, Device::cuda)};
  cuda::SharedRouting built;
  cuda::hsa_attention_forward(dt, q.raw_data(), mem_k.raw_data(), mem_v.raw_data(), indices.data<int32_t>(),
                              weights.data<float>(), scale, d, out.out.raw_data(), out.lse.data<float>(),
                              routing ? &built : nullptr);
  if (routing) *routing = HsaRouting::from_cuda(std::move(built), indices_in, d.chunks);
  return out;
}

HsaGrads backward_cuda(const char* op, const Tensor& dout_in, const Tensor& q_in, const Tensor& mem_k_in,
                       const Tensor& mem_v_in, const Tensor& indices_in, const Tensor& weights_in, const HsaOut& fwd,
                       double scale, const HsaDims& d, const HsaRouting& routing) {
  const DType dt = q_in.dtype();
  check_dtype(op, "fwd.lse", fwd.lse, DType::f32);
  Tensor q = q_in.contiguous(), mem_k = mem_k_in.contiguous(), mem_v = mem_v_in.contiguous();
  Tensor indices = indices_in.contiguous(), weights = weights_in.contiguous().to(DType::f32);
  Tensor dout = dout_in.contiguous().to(dt), lse = fwd.lse.contiguous();
  HsaGrads g{Tensor::empty(q.shape(), dt, Device::cuda), Tensor::empty(mem_k.shape(), dt, Device::cuda),
             Tensor::empty(mem_v.shape(), dt, Device::cuda),
             Tensor::empty(weights.shape(), DType::f32, Device::cuda)};
  cuda::hsa_attention_backward(dt, dout.raw_data(), q.raw_data(), mem_k.raw_data(), mem_v.raw_data(),
                               indices.data<int32_t>(), weights.data<float>(), lse.data<float>(), scale, d,
                               g.dq.raw_data(), g.dmem_k.raw_data(), g.dmem_v.raw_data(), g.dweights.data<float>(),
                               routing.device_for(op, indices_in, d.chunks));
  g.dweights = g.dweights.to(weights_in.dtype());
  return g;
}

}  // namespace

HsaOut hsa_attention_forward(const Tensor& q_in, const Tensor& mem_k_in, const Tensor& mem_v_in,
                             const Tensor& indices_in, const Tensor& weights_in, double scale, HsaRouting* routing) {
  const char* op = "hsa_attention_forward";
  if (routing) *routing = HsaRouting();
  Device device;
  HsaDims d = check_inputs(op, q_in, mem_k_in, mem_v_in, indices_in, weights_in, scale, &device);
  if (device == Device::cuda)
    return forward_cuda(q_in, mem_k_in, mem_v_in, indices_in, weights_in, scale, d, routing);
  Tensor indices = indices_in.contiguous();
  check_indices(op, indices, d);
  Tensor q = to_compute(q_in), mem_k = to_compute(mem_k_in), mem_v = to_compute(mem_v_in);
  DType ct = q.dtype();
  Tensor weights = to_compute(weights_in).to(ct);
  HsaOut out{Tensor::empty(q.shape(), ct), Tensor::empty({d.batch, d.len, d.q_heads, d.topk}, ct)};
  dispatch_float(op, ct, [&]<class T>() {
    cpu::hsa_attention_forward<T>(q.data<T>(), mem_k.data<T>(), mem_v.data<T>(), indices.data<int32_t>(),
                                  weights.data<T>(), scale, d, out.out.data<T>(), out.lse.data<T>());
  });
  out.out = to_storage(out.out, q_in.dtype());
  return out;
}

HsaGrads hsa_attention_backward(const Tensor& dout_in, const Tensor& q_in, const Tensor& mem_k_in,
                                const Tensor& mem_v_in, const Tensor& indices_in, const Tensor& weights_in,
                                const HsaOut& fwd, double scale, const HsaRouting& routing) {
  const char* op = "hsa_attention_backward";
  Device device;
  HsaDims d = check_inputs(op, q_in, mem_k_in, mem_v_in, indices_in, weights_in, scale, &device);
  check_float(op, "dout", dout_in);
  check_shape(op, "dout", dout_in, q_in.shape());
  if (device == Device::cuda) {
    check_shape(op, "fwd.lse", fwd.lse, {d.batch, d.len, d.q_heads, d.topk});
    common_device(op, {{"q", &q_in}, {"dout", &dout_in}, {"fwd.lse", &fwd.lse}});
    return backward_cuda(op, dout_in, q_in, mem_k_in, mem_v_in, indices_in, weights_in, fwd, scale, d, routing);
  }
  Tensor indices = indices_in.contiguous();
  check_indices(op, indices, d);
  Tensor q = to_compute(q_in), mem_k = to_compute(mem_k_in), mem_v = to_compute(mem_v_in);
  DType ct = q.dtype();
  check_shape(op, "fwd.lse", fwd.lse, {d.batch, d.len, d.q_heads, d.topk});
  check_dtype(op, "fwd.lse", fwd.lse, ct);
  common_device(op, {{"q", &q_in}, {"dout", &dout_in}, {"fwd.lse", &fwd.lse}});
  Tensor weights = to_compute(weights_in).to(ct), dout = to_compute(dout_in).to(ct), lse = fwd.lse.contiguous();
  HsaGrads g{Tensor::empty(q.shape(), ct), Tensor::empty(mem_k.shape(), ct), Tensor::empty(mem_v.shape(), ct),
             Tensor::empty(weights.shape(), ct)};
  dispatch_float(op, ct, [&]<class T>() {
    cpu::hsa_attention_backward<T>(dout.data<T>(), q.data<T>(), mem_k.data<T>(), mem_v.data<T>(),
                                   indices.data<int32_t>(), weights.data<T>(), lse.data<T>(), scale, d,
                                   g.dq.data<T>(), g.dmem_k.data<T>(), g.dmem_v.data<T>(), g.dweights.data<T>());
  });
  g.dq = to_storage(g.dq, q_in.dtype());
  g.dmem_k = to_storage(g.dmem_k, mem_k_in.dtype());
  g.dmem_v = to_storage(g.dmem_v, mem_v_in.dtype());
  g.dweights = g.dweights.to(weights_in.dtype());  // weights may differ from q's dtype
  return g;
}

}  // namespace hsa::ops

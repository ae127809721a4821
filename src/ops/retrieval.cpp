#include "ops/retrieval.h"

#include "cpu/retrieval.h"
#include "cuda/retrieval.h"
#include "ops/dispatch.h"

#include <cmath>
#include <limits>

namespace hsa::ops {

namespace {

RetrievalDims check_inputs(const char* op, const Tensor& qr, const Tensor& landmarks, const RetrievalParams& p) {
  check_float(op, "qr", qr);
  check_float(op, "landmarks", landmarks);
  check_ndim(op, "qr", qr, 4);
  check_ndim(op, "landmarks", landmarks, 4);
  check_same_dtype(op, "qr", qr, "landmarks", landmarks);
  RetrievalDims d;
  d.batch = qr.dim(0);
  d.seq_len = qr.dim(1);
  d.heads = qr.dim(2);
  d.dim = qr.dim(3);
  d.chunks = landmarks.dim(1);
  HSA_CHECK(landmarks.dim(0) == d.batch, "{}: 'landmarks' has shape {}, expected batch {} as in 'qr' {}", op,
            shape_str(landmarks.shape()), d.batch, shape_str(qr.shape()));
  HSA_CHECK(landmarks.dim(2) == d.heads, "{}: 'landmarks' has shape {}, expected {} heads as in 'qr' {}", op,
            shape_str(landmarks.shape()), d.heads, shape_str(qr.shape()));
  HSA_CHECK(landmarks.dim(3) == d.dim, "{}: 'landmarks' has shape {}, expected head dim dr = {} as in 'qr' {}", op,
            shape_str(landmarks.shape()), d.dim, shape_str(qr.shape()));
  HSA_CHECK(d.dim >= 1, "{}: 'qr' has shape {}, expected a head dim dr >= 1", op, shape_str(qr.shape()));
  HSA_CHECK(p.chunk_size > 0, "{}: chunk_size must be positive, got {}", op, p.chunk_size);
  HSA_CHECK(p.topk > 0, "{}: topk must be positive, got {}", op, p.topk);
  HSA_CHECK(p.window >= 0, "{}: window must be >= 0 (0: no window mask), got {}", op, p.window);
  HSA_CHECK(p.q_start >= 0, "{}: q_start must be >= 0, got {}", op, p.q_start);
  HSA_CHECK(std::isfinite(p.scale), "{}: scale must be finite (0: 1/sqrt(dr)), got {}", op, p.scale);
  HSA_CHECK(d.chunks <= std::numeric_limits<int32_t>::max(), "{}: {} landmarks do not fit i32 chunk indices", op,
            d.chunks);
  d.chunk_size = p.chunk_size;
  d.topk = p.topk;
  d.window = p.window;
  d.q_start = p.q_start;
  d.stick_breaking = p.weighting == ChunkWeighting::stick_breaking;
  return d;
}

double effective_scale(const RetrievalParams& p, int64_t dim) {
  return p.scale != 0 ? p.scale : 1.0 / std::sqrt(double(dim));
}

}  // namespace

RetrievalOut retrieval_forward(const Tensor& qr_in, const Tensor& landmarks_in, const RetrievalParams& p) {
  const char* op = "retrieval_forward";
  RetrievalDims d = check_inputs(op, qr_in, landmarks_in, p);
  const Device device = common_device(op, {{"qr", &qr_in}, {"landmarks", &landmarks_in}});
  if (device == Device::cuda) {
    cuda::retrieval_check_supported(op, qr_in.dtype(), d);
    Tensor qr = qr_in.contiguous(), landmarks = landmarks_in.contiguous();
    Shape out_shape{d.batch, d.seq_len, d.heads, d.topk};
    RetrievalOut out{Tensor::empty(out_shape, DType::i32, Device::cuda),
                     Tensor::empty(out_shape, DType::f32, Device::cuda),
                     Tensor::empty(out_shape, DType::f32, Device::cuda)};
    cuda::retrieval_forward(qr.dtype(), qr.raw_data(), landmarks.raw_data(), out.indices.data<int32_t>(),
                            out.weights.data<float>(), out.scores.data<float>(), d, effective_scale(p, d.dim));
    return out;
  }
  require_cpu(op, device);
  Tensor qr = to_compute(qr_in), landmarks = to_compute(landmarks_in);
  Shape out_shape{d.batch, d.seq_len, d.heads, d.topk};
  RetrievalOut out{Tensor::empty(out_shape, DType::i32), Tensor::empty(out_shape, qr.dtype()),
                   Tensor::empty(out_shape, qr.dtype())};
  dispatch_float(op, qr.dtype(), [&]<class T>() {
    cpu::retrieval_forward<T>(qr.data<T>(), landmarks.data<T>(), out.indices.data<int32_t>(), out.weights.data<T>(),
                              out.scores.data<T>(), d, effective_scale(p, d.dim));
  });
  return out;
}

RetrievalGrads retrieval_backward(const Tensor& dweights_in, const Tensor& qr_in, const Tensor& landmarks_in,
                                  const RetrievalOut& fwd, const RetrievalParams& p, const HsaRouting& routing) {
  const char* op = "retrieval_backward";
  RetrievalDims d = check_inputs(op, qr_in, landmarks_in, p);
  Shape out_shape{d.batch, d.seq_len, d.heads, d.topk};
  check_float(op, "dweights", dweights_in);
  check_shape(op, "dweights", dweights_in, out_shape);
  check_dtype(op, "fwd.indices", fwd.indices, DType::i32);
  check_shape(op, "fwd.indices", fwd.indices, out_shape);
  check_float(op, "fwd.weights", fwd.weights);
  check_shape(op, "fwd.weights", fwd.weights, out_shape);
  check_float(op, "fwd.scores", fwd.scores);
  check_shape(op, "fwd.scores", fwd.scores, out_shape);
  HSA_CHECK(d.seq_len * d.topk <= std::numeric_limits<int32_t>::max(),
            "{}: L * K = {} * {} is too large for the backward's i32 entry lists", op, d.seq_len, d.topk);
  const Device device = common_device(op, {{"qr", &qr_in},
                                           {"landmarks", &landmarks_in},
                                           {"dweights", &dweights_in},
                                           {"fwd.indices", &fwd.indices},
                                           {"fwd.weights", &fwd.weights},
                                           {"fwd.scores", &fwd.scores}});
  if (device == Device::cuda) {
    cuda::retrieval_check_supported(op, qr_in.dtype(), d);
    Tensor qr = qr_in.contiguous(), landmarks = landmarks_in.contiguous(), indices = fwd.indices.contiguous();
    // The kernels read and write everything besides qr and landmarks in f32.
    Tensor dweights = dweights_in.contiguous().to(DType::f32), weights = fwd.weights.contiguous().to(DType::f32),
           scores = fwd.scores.contiguous().to(DType::f32);
    RetrievalGrads grads{Tensor::empty(qr.shape(), qr.dtype(), Device::cuda),
                         Tensor::empty(landmarks.shape(), qr.dtype(), Device::cuda)};
    // Indices are validated on the device (never read on the host, nothing waits): a bad one throws at the next
    // cuda::synchronize(), naming its value and flat position.
    cuda::retrieval_backward(qr.dtype(), dweights.data<float>(), qr.raw_data(), landmarks.raw_data(),
                             indices.data<int32_t>(), weights.data<float>(), scores.data<float>(),
                             grads.dqr.raw_data(), grads.dlandmarks.raw_data(), d, effective_scale(p, d.dim),
                             routing.device_for(op, fwd.indices, d.chunks));
    return grads;
  }
  require_cpu(op, device);
  Tensor qr = to_compute(qr_in), landmarks = to_compute(landmarks_in);
  Tensor dweights = to_compute(dweights_in).to(qr.dtype()), weights = to_compute(fwd.weights).to(qr.dtype()),
         scores = to_compute(fwd.scores).to(qr.dtype()), indices = fwd.indices.contiguous();
  RetrievalGrads grads{Tensor::empty(qr.shape(), qr.dtype()), Tensor::empty(landmarks.shape(), qr.dtype())};
  int64_t bad = -1;
  dispatch_float(op, qr.dtype(), [&]<class T>() {
    bad = cpu::retrieval_backward<T>(dweights.data<T>(), qr.data<T>(), landmarks.data<T>(), indices.data<int32_t>(),
                                     weights.data<T>(), scores.data<T>(), grads.dqr.data<T>(),
                                     grads.dlandmarks.data<T>(), d, effective_scale(p, d.dim));
  });
  HSA_CHECK(bad < 0, "{}: 'fwd.indices' holds {} at flat position {}, expected -1 or a chunk in [0, {})", op,
            indices.data<int32_t>()[bad < 0 ? 0 : bad], bad, d.chunks);
  grads.dqr = to_storage(grads.dqr, qr_in.dtype());
  grads.dlandmarks = to_storage(grads.dlandmarks, landmarks_in.dtype());
  return grads;
}

}  // namespace hsa::ops

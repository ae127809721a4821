#include "ops/retrieval.h"

#include "cpu/retrieval.h"
#include "ops/dispatch.h"

#include <cmath>

namespace hsa::ops {

namespace {
cpu::RetrievalShape check_inputs(const char* op, const Tensor& qr, const Tensor& landmarks, const RetrievalParams& p) {
  check_float(op, "qr", qr);
  check_ndim(op, "qr", qr, 4);
  check_ndim(op, "landmarks", landmarks, 4);
  check_same_dtype(op, "qr", qr, "landmarks", landmarks);
  HSA_CHECK(landmarks.dim(0) == qr.dim(0) && landmarks.dim(2) == qr.dim(2) && landmarks.dim(3) == qr.dim(3),
            "{}: 'landmarks' {} does not match 'qr' {} (batch, heads and dr must agree)", op,
            shape_str(landmarks.shape()), shape_str(qr.shape()));
  HSA_CHECK(p.chunk_size > 0, "{}: chunk_size must be positive, got {}", op, p.chunk_size);
  HSA_CHECK(p.topk > 0, "{}: topk must be positive, got {}", op, p.topk);
  HSA_CHECK(p.window >= 0, "{}: window must be >= 0 (0 = no window mask), got {}", op, p.window);
  HSA_CHECK(p.q_start >= 0, "{}: negative q_start {}", op, p.q_start);
  require_cpu(op, common_device(op, {{"qr", &qr}, {"landmarks", &landmarks}}));
  double scale = p.scale > 0 ? p.scale : 1.0 / std::sqrt(double(qr.dim(3)));
  return cpu::RetrievalShape{qr.dim(0), qr.dim(1), landmarks.dim(1), qr.dim(2), qr.dim(3), p.topk, p.chunk_size,
                             p.window, p.q_start, scale, p.weighting == ChunkWeighting::stick_breaking};
}
}  // namespace

RetrievalOut retrieval_forward(const Tensor& qr_in, const Tensor& landmarks_in, const RetrievalParams& p) {
  const char* op = "retrieval_forward";
  cpu::RetrievalShape s = check_inputs(op, qr_in, landmarks_in, p);
  Tensor qr = to_compute(qr_in), landmarks = to_compute(landmarks_in);
  Shape out_shape{s.B, s.L, s.H, s.K};
  RetrievalOut out{Tensor::empty(out_shape, DType::i32), Tensor::empty(out_shape, qr.dtype()),
                   Tensor::empty(out_shape, qr.dtype())};
  dispatch_float(op, qr.dtype(), [&]<class T>() {
    cpu::retrieval_forward<T>(qr.data<T>(), landmarks.data<T>(), out.indices.data<int32_t>(), out.weights.data<T>(),
                              out.scores.data<T>(), s);
  });
  out.weights = to_storage(out.weights, qr_in.dtype());
  return out;
}

RetrievalGrads retrieval_backward(const Tensor& dweights_in, const Tensor& qr_in, const Tensor& landmarks_in,
                                  const RetrievalOut& fwd, const RetrievalParams& p) {
  const char* op = "retrieval_backward";
  cpu::RetrievalShape s = check_inputs(op, qr_in, landmarks_in, p);
  Shape slots{s.B, s.L, s.H, s.K};
  check_shape(op, "dweights", dweights_in, slots);
  check_shape(op, "fwd.indices", fwd.indices, slots);
  check_dtype(op, "fwd.indices", fwd.indices, DType::i32);
  check_shape(op, "fwd.weights", fwd.weights, slots);
  check_shape(op, "fwd.scores", fwd.scores, slots);
  Tensor qr = to_compute(qr_in), landmarks = to_compute(landmarks_in);
  Tensor dw = to_compute(dweights_in).to(qr.dtype()), w = to_compute(fwd.weights).to(qr.dtype()),
         sc = to_compute(fwd.scores).to(qr.dtype()), idx = fwd.indices.contiguous();
  const int32_t* ip = idx.data<int32_t>();
  for (int64_t i = 0; i < idx.numel(); ++i)
    HSA_CHECK(ip[i] >= -1 && ip[i] < s.C, "{}: chunk index {} in slot {} is outside [-1, {})", op, ip[i], i, s.C);
  RetrievalGrads g{Tensor::empty(qr.shape(), qr.dtype()), Tensor::empty(landmarks.shape(), qr.dtype())};
  dispatch_float(op, qr.dtype(), [&]<class T>() {
    cpu::retrieval_backward<T>(dw.data<T>(), qr.data<T>(), landmarks.data<T>(), ip, w.data<T>(), sc.data<T>(),
                               g.dqr.data<T>(), g.dlandmarks.data<T>(), s);
  });
  g.dqr = to_storage(g.dqr, qr_in.dtype());
  g.dlandmarks = to_storage(g.dlandmarks, landmarks_in.dtype());
  return g;
}

}  // namespace hsa::ops

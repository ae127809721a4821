#include "ops/cross_entropy.h"

#include "cpu/cross_entropy.h"
#include "ops/dispatch.h"

#include <vector>

namespace hsa::ops {

namespace {
int64_t check_inputs(const char* op, const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  check_float(op, "logits", logits);
  check_ndim(op, "logits", logits, 2);
  check_dtype(op, "targets", targets, DType::i32);
  check_shape(op, "targets", targets, {logits.dim(0)});
  HSA_CHECK(logits.dim(1) > 0, "{}: logits have no classes: {}", op, shape_str(logits.shape()));
  require_cpu(op, common_device(op, {{"logits", &logits}, {"targets", &targets}}));
  Tensor t = targets.contiguous();
  int64_t count = 0, v = logits.dim(1);
  const int32_t* p = t.data<int32_t>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (p[i] == ignore_index) continue;
    HSA_CHECK(p[i] >= 0 && p[i] < v, "{}: target {} at row {} is outside [0, {}) and not the ignore index {}", op,
              p[i], i, v, ignore_index);
    ++count;
  }
  return count;
}
}  // namespace

CrossEntropyOut cross_entropy_forward(const Tensor& logits_in, const Tensor& targets_in, int32_t ignore_index) {
  const char* op = "cross_entropy_forward";
  CrossEntropyOut out;
  out.count = check_inputs(op, logits_in, targets_in, ignore_index);
  Tensor logits = to_compute(logits_in), targets = targets_in.contiguous();
  int64_t n = logits.dim(0), v = logits.dim(1);
  out.lse = Tensor::empty({n}, logits.dtype());
  std::vector<double> row_loss(n);
  dispatch_float(op, logits.dtype(), [&]<class T>() {
    cpu::cross_entropy_forward<T>(logits.data<T>(), targets.data<int32_t>(), out.lse.data<T>(), row_loss.data(), n, v,
                                  ignore_index);
  });
  double total = 0;
  for (double l : row_loss) total += l;  // fixed order: deterministic
  out.loss = out.count > 0 ? total / double(out.count) : 0.0;
  return out;
}

Tensor cross_entropy_backward(double dloss, const Tensor& logits_in, const Tensor& targets_in, const Tensor& lse_in,
                              int32_t ignore_index) {
  const char* op = "cross_entropy_backward";
  int64_t count = check_inputs(op, logits_in, targets_in, ignore_index);
  check_shape(op, "lse", lse_in, {logits_in.dim(0)});
  Tensor logits = to_compute(logits_in), targets = targets_in.contiguous(), lse = to_compute(lse_in).to(logits.dtype());
  int64_t n = logits.dim(0), v = logits.dim(1);
  Tensor d = Tensor::empty({n, v}, logits.dtype());
  double scale = count > 0 ? dloss / double(count) : 0.0;
  dispatch_float(op, logits.dtype(), [&]<class T>() {
    cpu::cross_entropy_backward<T>(logits.data<T>(), targets.data<int32_t>(), lse.data<T>(), d.data<T>(), n, v, scale,
                                   ignore_index);
  });
  return to_storage(d, logits_in.dtype());
}

}  // namespace hsa::ops

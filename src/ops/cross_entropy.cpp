#include "ops/cross_entropy.h"

#include "cpu/cross_entropy.h"
#include "cuda/cross_entropy.h"
#include "cuda/dtype_dispatch.h"
#include "ops/dispatch.h"

#include <cmath>
#include <vector>

namespace hsa::ops {

namespace {
void check_inputs(const char* op, const Tensor& logits, const Tensor& targets) {
  check_float(op, "logits", logits);
  check_ndim(op, "logits", logits, 2);
  HSA_CHECK(logits.dim(1) >= 1, "{}: 'logits' has shape {}, expected a non-empty vocabulary axis", op,
            shape_str(logits.shape()));
  check_dtype(op, "targets", targets, DType::i32);
  check_shape(op, "targets", targets, {logits.dim(0)});
}

// Every target in [0, V) or ignore_index; returns how many are not ignored.
int64_t count_targets(const char* op, const Tensor& targets, int64_t vocab_size, int32_t ignore_index) {
  const int32_t* t = targets.data<int32_t>();
  int64_t count = 0;
  for (int64_t n = 0; n < targets.numel(); ++n) {
    if (t[n] == ignore_index) continue;
    HSA_CHECK(t[n] >= 0 && t[n] < vocab_size,
              "{}: 'targets'[{}] = {} is outside [0, {}) and not ignore_index ({}) (logits [{}, {}])", op, n, t[n],
              vocab_size, ignore_index, targets.numel(), vocab_size);
    ++count;
  }
  return count;
}
}  // namespace

CrossEntropyOut cross_entropy_forward(const Tensor& logits_in, const Tensor& targets_in, int32_t ignore_index) {
  const char* op = "cross_entropy_forward";
  check_inputs(op, logits_in, targets_in);
  Device device = common_device(op, {{"logits", &logits_in}, {"targets", &targets_in}});
  if (device == Device::cuda) {
    // Targets are checked on the device; the loss comes back to the host, so a bad target throws here.
    Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
    int64_t n = logits.dim(0), v = logits.dim(1);
    CrossEntropyOut out{0.0, 0, Tensor::empty({n}, DType::f32, Device::cuda)};
    cuda::CrossEntropySums sums = cuda::dispatch_storage(op, logits.dtype(), [&]<class T>() {
      return cuda::cross_entropy_forward<T>(logits.data<T>(), targets.data<int32_t>(), out.lse.data<float>(), n, v,
                                            ignore_index);
    });
    out.count = sums.count;
    out.loss = sums.count > 0 ? sums.total / double(sums.count) : 0.0;
    return out;
  }
  require_cpu(op, device);
  Tensor targets = targets_in.contiguous();
  int64_t n = logits_in.dim(0), v = logits_in.dim(1);
  int64_t count = count_targets(op, targets, v, ignore_index);
  Tensor logits = to_compute(logits_in);
  CrossEntropyOut out{0.0, count, Tensor::empty({n}, logits.dtype())};
  std::vector<double> row_loss(static_cast<size_t>(n));
  dispatch_float(op, logits.dtype(), [&]<class T>() {
    cpu::cross_entropy_forward<T>(logits.data<T>(), targets.data<int32_t>(), out.lse.data<T>(), row_loss.data(), n, v,
                                  ignore_index);
  });
  // Summed in row order on one thread: the loss does not depend on the thread count.
  double total = 0;
  for (double l : row_loss) total += l;
  out.loss = count > 0 ? total / double(count) : 0.0;
  return out;
}

Tensor cross_entropy_backward(double dloss, const Tensor& logits_in, const Tensor& targets_in, const Tensor& lse_in,
                              int32_t ignore_index) {
  const char* op = "cross_entropy_backward";
  check_inputs(op, logits_in, targets_in);
  check_float(op, "lse", lse_in);
  check_shape(op, "lse", lse_in, {logits_in.dim(0)});
  HSA_CHECK(std::isfinite(dloss), "{}: dloss must be finite, got {}", op, dloss);
  Device device = common_device(op, {{"logits", &logits_in}, {"targets", &targets_in}, {"lse", &lse_in}});
  if (device == Device::cuda) {
    check_dtype(op, "lse", lse_in, DType::f32);  // what cross_entropy_forward returns on cuda
    Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous(), lse = lse_in.contiguous();
    int64_t n = logits.dim(0), v = logits.dim(1);
    Tensor dlogits = Tensor::empty({n, v}, logits.dtype(), Device::cuda);
    cuda::dispatch_storage(op, logits.dtype(), [&]<class T>() {
      cuda::cross_entropy_backward<T>(logits.data<T>(), targets.data<int32_t>(), lse.data<float>(),
                                      dlogits.data<T>(), n, v, ignore_index, dloss);
    });
    return dlogits;
  }
  require_cpu(op, device);
  Tensor targets = targets_in.contiguous();
  int64_t n = logits_in.dim(0), v = logits_in.dim(1);
  int64_t count = count_targets(op, targets, v, ignore_index);
  Tensor logits = to_compute(logits_in), lse = to_compute(lse_in).to(logits.dtype());
  Tensor dlogits = Tensor::empty({n, v}, logits.dtype());
  double scale = count > 0 ? dloss / double(count) : 0.0;
  dispatch_float(op, logits.dtype(), [&]<class T>() {
    cpu::cross_entropy_backward<T>(logits.data<T>(), targets.data<int32_t>(), lse.data<T>(), dlogits.data<T>(), n, v,
                                   ignore_index, scale);
  });
  return to_storage(dlogits, logits_in.dtype());
}

}  // namespace hsa::ops

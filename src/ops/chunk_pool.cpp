#include "ops/chunk_pool.h"

#include "cpu/chunk_pool.h"
#include "ops/dispatch.h"

namespace hsa::ops {

Tensor chunk_mean_forward(const Tensor& x_in, int64_t chunk_size) {
  const char* op = "chunk_mean_forward";
  check_float(op, "x", x_in);
  check_ndim(op, "x", x_in, 3);
  HSA_CHECK(chunk_size > 0, "{}: chunk_size must be positive, got {}", op, chunk_size);
  require_cpu(op, x_in.device());
  Tensor x = to_compute(x_in);
  int64_t B = x.dim(0), L = x.dim(1), dm = x.dim(2), C = L / chunk_size;
  Tensor pooled = Tensor::empty({B, C, dm}, x.dtype());
  dispatch_float(op, x.dtype(), [&]<class T>() {
    cpu::chunk_mean_forward<T>(x.data<T>(), pooled.data<T>(), B, L, C, chunk_size, dm);
  });
  return to_storage(pooled, x_in.dtype());
}

Tensor chunk_mean_backward(const Tensor& dpooled_in, int64_t seq_len, int64_t chunk_size) {
  const char* op = "chunk_mean_backward";
  check_float(op, "dpooled", dpooled_in);
  check_ndim(op, "dpooled", dpooled_in, 3);
  HSA_CHECK(chunk_size > 0, "{}: chunk_size must be positive, got {}", op, chunk_size);
  HSA_CHECK(dpooled_in.dim(1) == seq_len / chunk_size, "{}: 'dpooled' {} has {} chunks, but seq_len {} / {} gives {}",
            op, shape_str(dpooled_in.shape()), dpooled_in.dim(1), seq_len, chunk_size, seq_len / chunk_size);
  require_cpu(op, dpooled_in.device());
  Tensor dp = to_compute(dpooled_in);
  int64_t B = dp.dim(0), C = dp.dim(1), dm = dp.dim(2);
  Tensor dx = Tensor::empty({B, seq_len, dm}, dp.dtype());
  dispatch_float(op, dp.dtype(), [&]<class T>() {
    cpu::chunk_mean_backward<T>(dp.data<T>(), dx.data<T>(), B, seq_len, C, chunk_size, dm);
  });
  return to_storage(dx, dpooled_in.dtype());
}

}  // namespace hsa::ops

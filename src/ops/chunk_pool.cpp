#include "ops/chunk_pool.h"

#include "cpu/chunk_pool.h"
#include "cuda/chunk_pool.h"
#include "cuda/dtype_dispatch.h"
#include "ops/dispatch.h"

namespace hsa::ops {

Tensor chunk_mean_forward(const Tensor& x_in, int64_t chunk_size) {
  const char* op = "chunk_mean_forward";
  check_float(op, "x", x_in);
  check_ndim(op, "x", x_in, 3);
  HSA_CHECK(chunk_size > 0, "{}: chunk_size must be positive, got {}", op, chunk_size);
  Device device = common_device(op, {{"x", &x_in}});
  if (device == Device::cuda) {
    Tensor x = x_in.contiguous();
    int64_t batch = x.dim(0), seq_len = x.dim(1), dim = x.dim(2), chunks = seq_len / chunk_size;
    Tensor pooled = Tensor::empty({batch, chunks, dim}, x.dtype(), Device::cuda);
    cuda::dispatch_storage(op, x.dtype(), [&]<class T>() {
      cuda::chunk_mean_forward<T>(x.data<T>(), pooled.data<T>(), batch, seq_len, dim, chunk_size);
    });
    return pooled;
  }
  require_cpu(op, device);
  Tensor x = to_compute(x_in);
  int64_t batch = x.dim(0), seq_len = x.dim(1), dim = x.dim(2), chunks = seq_len / chunk_size;
  Tensor pooled = Tensor::empty({batch, chunks, dim}, x.dtype());
  dispatch_float(op, x.dtype(), [&]<class T>() {
    cpu::chunk_mean_forward<T>(x.data<T>(), pooled.data<T>(), batch, seq_len, dim, chunk_size);
  });
  return to_storage(pooled, x_in.dtype());
}

Tensor chunk_mean_backward(const Tensor& dpooled_in, int64_t seq_len, int64_t chunk_size) {
  const char* op = "chunk_mean_backward";
  check_float(op, "dpooled", dpooled_in);
  check_ndim(op, "dpooled", dpooled_in, 3);
  HSA_CHECK(chunk_size > 0, "{}: chunk_size must be positive, got {}", op, chunk_size);
  HSA_CHECK(seq_len >= 0, "{}: seq_len must be non-negative, got {}", op, seq_len);
  int64_t batch = dpooled_in.dim(0), dim = dpooled_in.dim(2), chunks = seq_len / chunk_size;
  HSA_CHECK(dpooled_in.dim(1) == chunks,
            "{}: 'dpooled' has shape {}, expected {} chunks (seq_len {} / chunk_size {}, complete chunks only)", op,
            shape_str(dpooled_in.shape()), chunks, seq_len, chunk_size);
  Device device = common_device(op, {{"dpooled", &dpooled_in}});
  if (device == Device::cuda) {
    Tensor dpooled = dpooled_in.contiguous();
    Tensor dx = Tensor::empty({batch, seq_len, dim}, dpooled.dtype(), Device::cuda);
    cuda::dispatch_storage(op, dpooled.dtype(), [&]<class T>() {
      cuda::chunk_mean_backward<T>(dpooled.data<T>(), dx.data<T>(), batch, seq_len, dim, chunk_size);
    });
    return dx;
  }
  require_cpu(op, device);
  Tensor dpooled = to_compute(dpooled_in);
  Tensor dx = Tensor::empty({batch, seq_len, dim}, dpooled.dtype());
  dispatch_float(op, dpooled.dtype(), [&]<class T>() {
    cpu::chunk_mean_backward<T>(dpooled.data<T>(), dx.data<T>(), batch, seq_len, dim, chunk_size);
  });
  return to_storage(dx, dpooled_in.dtype());
}

}  // namespace hsa::ops

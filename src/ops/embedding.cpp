#include "ops/embedding.h"

#include "cpu/embedding.h"
#include "cuda/dtype_dispatch.h"
#include "cuda/embedding.h"
#include "ops/dispatch.h"

namespace hsa::ops {

namespace {

// ids' row-major index i as "[a, b, c]", for error messages.
std::string index_str(const Shape& shape, int64_t i) {
  Shape index(shape.size());
  for (size_t k = shape.size(); k-- > 0;) {
    index[k] = i % shape[k];
    i /= shape[k];
  }
  return shape_str(index);
}

// Every id in [0, vocab_size); the error names the first one that is not and where it sits.
void check_ids(const char* op, const Tensor& ids, int64_t vocab_size) {
  const int32_t* p = ids.data<int32_t>();
  for (int64_t i = 0; i < ids.numel(); ++i)
    HSA_CHECK(p[i] >= 0 && p[i] < vocab_size, "{}: 'ids' holds {} at index {}, outside [0, {}) (ids shape {})", op,
              p[i], index_str(ids.shape(), i), vocab_size, shape_str(ids.shape()));
}

}  // namespace

Tensor embedding_forward(const Tensor& table_in, const Tensor& ids_in) {
  const char* op = "embedding_forward";
  check_float(op, "table", table_in);
  check_ndim(op, "table", table_in, 2);
  check_dtype(op, "ids", ids_in, DType::i32);
  Device device = common_device(op, {{"table", &table_in}, {"ids", &ids_in}});
  if (device == Device::cuda) {
    // ids live on the device: the kernel checks them and a bad one throws at the next cuda::synchronize().
    Tensor ids = ids_in.contiguous(), table = table_in.contiguous();
    Shape out_shape = ids.shape();
    out_shape.push_back(table.dim(1));
    Tensor y = Tensor::empty(out_shape, table.dtype(), Device::cuda);
    cuda::dispatch_storage(op, table.dtype(), [&]<class T>() {
      cuda::embedding_forward<T>(table.data<T>(), ids.data<int32_t>(), y.data<T>(), ids.numel(), table.dim(1),
                                 table.dim(0));
    });
    return y;
  }
  require_cpu(op, device);
  Tensor ids = ids_in.contiguous();
  int64_t vocab_size = table_in.dim(0), dm = table_in.dim(1);
  check_ids(op, ids, vocab_size);
  Shape out_shape = ids.shape();
  out_shape.push_back(dm);
  // The gather copies rows unchanged, so bf16 tables are read as they are stored (no f32 copy of the table).
  Tensor table = table_in.contiguous();
  Tensor y = Tensor::empty(out_shape, table.dtype());
  if (table.dtype() == DType::bf16) {
    cpu::embedding_forward<bf16>(table.data<bf16>(), ids.data<int32_t>(), y.data<bf16>(), ids.numel(), dm);
    return y;
  }
  dispatch_float(op, table.dtype(), [&]<class T>() {
    cpu::embedding_forward<T>(table.data<T>(), ids.data<int32_t>(), y.data<T>(), ids.numel(), dm);
  });
  return y;
}

Tensor embedding_backward(const Tensor& dy_in, const Tensor& ids_in, int64_t vocab_size) {
  const char* op = "embedding_backward";
  check_float(op, "dy", dy_in);
  check_dtype(op, "ids", ids_in, DType::i32);
  HSA_CHECK(vocab_size >= 1, "{}: vocab_size must be positive, got {}", op, vocab_size);
  HSA_CHECK(dy_in.ndim() == ids_in.ndim() + 1 &&
                Shape(dy_in.shape().begin(), dy_in.shape().end() - 1) == ids_in.shape(),
            "{}: 'dy' has shape {}, expected ids' shape {} plus a trailing dm axis", op, shape_str(dy_in.shape()),
            shape_str(ids_in.shape()));
  Device device = common_device(op, {{"dy", &dy_in}, {"ids", &ids_in}});
  if (device == Device::cuda) {
    Tensor ids = ids_in.contiguous(), dy = dy_in.contiguous();
    int64_t dm = dy.dim(-1);
    Tensor dtable = Tensor::empty({vocab_size, dm}, dy.dtype(), Device::cuda);
    cuda::dispatch_storage(op, dy.dtype(), [&]<class T>() {
      cuda::embedding_backward<T>(dy.data<T>(), ids.data<int32_t>(), dtable.data<T>(), ids.numel(), dm, vocab_size);
    });
    return dtable;
  }
  require_cpu(op, device);
  Tensor ids = ids_in.contiguous();
  check_ids(op, ids, vocab_size);
  Tensor dy = to_compute(dy_in);
  int64_t dm = dy.dim(-1);
  Tensor dtable = Tensor::empty({vocab_size, dm}, dy.dtype());
  dispatch_float(op, dy.dtype(), [&]<class T>() {
    cpu::embedding_backward<T>(dy.data<T>(), ids.data<int32_t>(), dtable.data<T>(), ids.numel(), dm, vocab_size);
  });
  return to_storage(dtable, dy_in.dtype());
}

}  // namespace hsa::ops

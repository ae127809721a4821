#include "ops/embedding.h"

#include "cpu/embedding.h"
#include "ops/dispatch.h"

namespace hsa::ops {

namespace {
void check_ids(const char* op, const Tensor& ids, int64_t vocab) {
  check_dtype(op, "ids", ids, DType::i32);
  const int32_t* p = ids.data<int32_t>();
  for (int64_t i = 0; i < ids.numel(); ++i)
    HSA_CHECK(p[i] >= 0 && p[i] < vocab, "{}: token id {} at position {} is outside the vocabulary [0, {})", op, p[i],
              i, vocab);
}
}  // namespace

Tensor embedding_forward(const Tensor& table_in, const Tensor& ids_in) {
  const char* op = "embedding_forward";
  check_float(op, "table", table_in);
  check_ndim(op, "table", table_in, 2);
  require_cpu(op, common_device(op, {{"table", &table_in}, {"ids", &ids_in}}));
  Tensor table = to_compute(table_in), ids = ids_in.contiguous();
  check_ids(op, ids, table.dim(0));
  Shape shape = ids.shape();
  shape.push_back(table.dim(1));
  Tensor y = Tensor::empty(shape, table.dtype());
  dispatch_float(op, table.dtype(), [&]<class T>() {
    cpu::embedding_forward<T>(table.data<T>(), ids.data<int32_t>(), y.data<T>(), ids.numel(), table.dim(1));
  });
  return to_storage(y, table_in.dtype());
}

Tensor embedding_backward(const Tensor& dy_in, const Tensor& ids_in, int64_t vocab_size) {
  const char* op = "embedding_backward";
  check_float(op, "dy", dy_in);
  HSA_CHECK(vocab_size > 0, "{}: vocab_size must be positive, got {}", op, vocab_size);
  require_cpu(op, common_device(op, {{"dy", &dy_in}, {"ids", &ids_in}}));
  Tensor ids = ids_in.contiguous();
  Shape expected = ids.shape();
  expected.push_back(dy_in.dim(-1));
  check_shape(op, "dy", dy_in, expected);
  check_ids(op, ids, vocab_size);
  Tensor dy = to_compute(dy_in);
  int64_t dm = dy.dim(-1);
  Tensor dtable = Tensor::zeros({vocab_size, dm}, dy.dtype());
  dispatch_float(op, dy.dtype(), [&]<class T>() {
    cpu::embedding_backward<T>(dy.data<T>(), ids.data<int32_t>(), dtable.data<T>(), ids.numel(), dm);
  });
  return to_storage(dtable, dy_in.dtype());
}

}  // namespace hsa::ops

#include "ops/shape_ops.h"


namespace hsa::ops {

Tensor concat(const std::vector<Tensor>& parts, int axis) {
  const Tensor* first = nullptr;
  int64_t total = 0;
  for (const Tensor& p : parts) {
    if (!p.defined() || p.numel() == 0) continue;
    if (!first) first = &p;
    HSA_CHECK(p.ndim() == first->ndim() && p.dtype() == first->dtype(), "concat: {} does not match {}", p.str(),
              first->str());
    for (int d = 0; d < p.ndim(); ++d)
      HSA_CHECK(d == (axis < 0 ? axis + p.ndim() : axis) || p.dim(d) == first->dim(d),
                "concat: shapes {} and {} differ outside axis {}", shape_str(p.shape()), shape_str(first->shape()),
                axis);
    total += p.dim(axis);
  }
  HSA_CHECK(first != nullptr, "concat: nothing to concatenate");
  Shape shape = first->shape();
  int a = axis < 0 ? axis + first->ndim() : axis;
  shape[a] = total;
  Tensor out = Tensor::empty(shape, first->dtype(), first->device());
  int64_t offset = 0;
  for (const Tensor& p : parts) {
    if (!p.defined() || p.numel() == 0) continue;
    Tensor dst = out.slice(a, offset, offset + p.dim(a));
    dst.copy_from(p);
    offset += p.dim(a);
  }
  return out;
}

Tensor slice_copy(const Tensor& x, int axis, int64_t start, int64_t end) {
  Tensor part = x.slice(axis, start, end);
  return part.is_contiguous() ? part.clone() : part.contiguous();
}

Tensor pad_slice(const Tensor& part, const Shape& full_shape, int axis, int64_t start) {
  Tensor out = Tensor::zeros(full_shape, part.dtype(), part.device());
  Tensor dst = out.slice(axis, start, start + part.dim(axis));
  dst.copy_from(part);
  return out;
}

}  // namespace hsa::ops

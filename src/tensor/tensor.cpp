#include <hsa/arena.h>
#include <hsa/tensor.h>

#include "tensor/device_memory.h"

#include <numeric>

namespace hsa {

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) fail("shape {}: the element count overflows 64 bits", shape_str(shape));
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

Storage::~Storage() {
  if (deleter && data) deleter(data);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) HSA_CHECK(d >= 0, "Tensor::empty: negative dimension in shape {}", shape_str(shape));
  Tensor t;
  t.storage_ = std::make_shared<Storage>();
  size_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(shape_numel(shape)), dtype_size(dtype), &bytes))
    fail("Tensor::empty: shape {} of {} overflows a byte count", shape_str(shape), dtype_name(dtype));
  t.storage_->bytes = bytes;
  t.storage_->device = device;
  Arena* arena = device == Device::cpu ? Arena::current() : nullptr;
  if (arena) {
    t.storage_->data = arena->allocate(t.storage_->bytes);
  } else {
    t.storage_->data = device_alloc(device, t.storage_->bytes);
    t.storage_->deleter = device_deleter(device);
  }
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  zero_bytes(t.raw_data(), device, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill(value);
  return t;
}

Tensor Tensor::from_values(const std::vector<double>& values, const Shape& shape, DType dtype) {
  HSA_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
            "Tensor::from_values: {} values for shape {}", values.size(), shape_str(shape));
  Tensor t = empty(shape, dtype);
  for (int64_t i = 0; i < t.numel(); ++i) t.set_flat(i, values[i]);
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, Device device, std::shared_ptr<const void> owner) {
  Tensor t;
  t.storage_ = std::make_shared<Storage>();
  t.storage_->data = data;
  size_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(shape_numel(shape)), dtype_size(dtype), &bytes))
    fail("Tensor::empty: shape {} of {} overflows a byte count", shape_str(shape), dtype_name(dtype));
  t.storage_->bytes = bytes;
  t.storage_->device = device;
  t.storage_->owner = std::move(owner);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::from_i32(const std::vector<int32_t>& values, const Shape& shape) {
  HSA_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_i32: {} values for shape {}",
            values.size(), shape_str(shape));
  Tensor t = empty(shape, DType::i32);
  std::copy(values.begin(), values.end(), t.data<int32_t>());
  return t;
}

int64_t Tensor::dim(int axis) const {
  int n = ndim();
  int a = axis < 0 ? axis + n : axis;
  HSA_CHECK(a >= 0 && a < n, "Tensor::dim: axis {} out of range for shape {}", axis, shape_str(shape_));
  return shape_[a];
}

// Strides of size-1 axes never matter, so a slice like [1, C, ...] of a [1, Cmax, ...] buffer counts as contiguous.
bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (shape_[i] == 1) continue;
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  if (!storage_) return nullptr;
  return static_cast<std::byte*>(storage_->data) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

Tensor Tensor::view(const Shape& shape) const {
  HSA_CHECK(is_contiguous(), "Tensor::view: tensor {} is not contiguous", str());
  Shape resolved = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      HSA_CHECK(infer < 0, "Tensor::view: more than one -1 in {}", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    HSA_CHECK(known > 0 && numel() % known == 0, "Tensor::view: cannot view {} as {}", shape_str(shape_),
              shape_str(shape));
    resolved[infer] = numel() / known;
  }
  HSA_CHECK(shape_numel(resolved) == numel(), "Tensor::view: cannot view {} ({} elements) as {}", shape_str(shape_),
            numel(), shape_str(shape));
  Tensor t = *this;
  t.shape_ = resolved;
  t.strides_ = contiguous_strides(resolved);
  return t;
}

Tensor Tensor::slice(int axis, int64_t start, int64_t end) const {
  int a = axis < 0 ? axis + ndim() : axis;
  HSA_CHECK(a >= 0 && a < ndim(), "Tensor::slice: axis {} out of range for {}", axis, shape_str(shape_));
  HSA_CHECK(0 <= start && start <= end && end <= shape_[a], "Tensor::slice: [{}, {}) out of range for axis {} of {}",
            start, end, axis, shape_str(shape_));
  Tensor t = *this;
  t.offset_ += start * strides_[a];
  t.shape_[a] = end - start;
  return t;
}

Tensor Tensor::select(int axis, int64_t index) const {
  int a = axis < 0 ? axis + ndim() : axis;
  Tensor t = slice(a, index, index + 1);
  t.shape_.erase(t.shape_.begin() + a);
  t.strides_.erase(t.strides_.begin() + a);
  return t;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  check_defined("Tensor::clone", "self", *this);
  Tensor t = empty(shape_, dtype_, device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor t = empty(shape_, dtype, device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor src = contiguous();
  Tensor t = empty(shape_, dtype_, device);
  copy_bytes(t.raw_data(), device, src.raw_data(), src.device(), nbytes());
  return t;
}

namespace {

// Calls fn(linear_index, element_offset) for every element in row-major order.
template <class Fn> void for_each_offset(const Shape& shape, const Shape& strides, Fn&& fn) {
  int64_t n = shape_numel(shape);
  int nd = static_cast<int>(shape.size());
  std::vector<int64_t> index(nd, 0);
  int64_t offset = 0;
  for (int64_t i = 0; i < n; ++i) {
    fn(i, offset);
    for (int d = nd - 1; d >= 0; --d) {
      if (++index[d] < shape[d]) {
        offset += strides[d];
        break;
      }
      offset -= (shape[d] - 1) * strides[d];
      index[d] = 0;
    }
  }
}

double load(const void* base, DType dtype, int64_t offset) {
  switch (dtype) {
    case DType::f32: return static_cast<const float*>(base)[offset];
    case DType::f64: return static_cast<const double*>(base)[offset];
    case DType::i32: return static_cast<const int32_t*>(base)[offset];
    case DType::bf16: return bf16::to_float(static_cast<const uint16_t*>(base)[offset]);
  }
  return 0;
}

void store(void* base, DType dtype, int64_t offset, double value) {
  switch (dtype) {
    case DType::f32: static_cast<float*>(base)[offset] = static_cast<float>(value); break;
    case DType::f64: static_cast<double*>(base)[offset] = value; break;
    case DType::i32: static_cast<int32_t*>(base)[offset] = static_cast<int32_t>(value); break;
    case DType::bf16: static_cast<uint16_t*>(base)[offset] = bf16::from_float(static_cast<float>(value)); break;
  }
}

}  // namespace

void Tensor::copy_from(const Tensor& src) {
  check_defined("Tensor::copy_from", "src", src);
  HSA_CHECK(src.shape_ == shape_, "Tensor::copy_from: source shape {} differs from destination shape {}",
            shape_str(src.shape_), shape_str(shape_));
  if (src.dtype_ == dtype_ && src.is_contiguous() && is_contiguous()) {
    copy_bytes(raw_data(), device(), src.raw_data(), src.device(), nbytes());
    return;
  }
  if (src.device() != device()) {  // move a contiguous copy across first, then convert or scatter locally
    copy_from(src.contiguous().to(device()));
    return;
  }
  if (device() != Device::cpu) {
    copy_elements(raw_data(), dtype_, shape_, strides_, src.raw_data(), src.dtype_, src.strides_, device());
    return;
  }
  std::vector<int64_t> src_offsets(numel());
  for_each_offset(src.shape_, src.strides_, [&](int64_t i, int64_t off) { src_offsets[i] = off; });
  void* dst_base = raw_data();
  const void* src_base = src.raw_data();
  for_each_offset(shape_, strides_, [&](int64_t i, int64_t off) {
    store(dst_base, dtype_, off, load(src_base, src.dtype_, src_offsets[i]));
  });
}

void Tensor::fill(double value) {
  if (device() != Device::cpu) {
    fill_elements(raw_data(), dtype_, shape_, strides_, value, device());
    return;
  }
  void* base = raw_data();
  for_each_offset(shape_, strides_, [&](int64_t, int64_t off) { store(base, dtype_, off, value); });
}

void Tensor::zero() {
  if (is_contiguous()) {
    zero_bytes(raw_data(), device(), nbytes());
  } else {
    fill(0.0);
  }
}

int64_t Tensor::linear_offset(const std::vector<int64_t>& index) const {
  HSA_CHECK(static_cast<int>(index.size()) == ndim(), "Tensor: index with {} coordinates into {}", index.size(),
            shape_str(shape_));
  int64_t off = 0;
  for (int d = 0; d < ndim(); ++d) {
    HSA_CHECK(index[d] >= 0 && index[d] < shape_[d], "Tensor: index {} out of range for {}", fmt::join(index, ","),
              shape_str(shape_));
    off += index[d] * strides_[d];
  }
  return off;
}

double Tensor::item(const std::vector<int64_t>& index) const {
  HSA_CHECK(device() == Device::cpu, "Tensor::item: only cpu tensors");
  return load(raw_data(), dtype_, linear_offset(index));
}

double Tensor::item() const {
  HSA_CHECK(numel() == 1, "Tensor::item: tensor {} has {} elements, expected 1", shape_str(shape_), numel());
  Tensor host = to(Device::cpu);
  return load(host.raw_data(), dtype_, 0);
}

void Tensor::set(const std::vector<int64_t>& index, double value) {
  HSA_CHECK(device() == Device::cpu, "Tensor::set: only cpu tensors");
  store(raw_data(), dtype_, linear_offset(index), value);
}

void Tensor::set_flat(int64_t i, double value) {
  HSA_CHECK(is_contiguous() && device() == Device::cpu, "Tensor::set_flat: needs a contiguous cpu tensor");
  store(raw_data(), dtype_, i, value);
}

double Tensor::get_flat(int64_t i) const {
  HSA_CHECK(is_contiguous() && device() == Device::cpu, "Tensor::get_flat: needs a contiguous cpu tensor");
  return load(raw_data(), dtype_, i);
}

std::vector<double> Tensor::to_vector() const {
  Tensor host = to(Device::cpu);
  std::vector<double> values(numel());
  const void* base = host.raw_data();
  for_each_offset(host.shape_, host.strides_, [&](int64_t i, int64_t off) { values[i] = load(base, dtype_, off); });
  return values;
}

std::string Tensor::str() const {
  return fmt::format("{}{} {}", dtype_name(dtype_), shape_str(shape_), device_name(device()));
}

// ---- checks ----

void check_defined(const char* op, const char* name, const Tensor& t) {
  HSA_CHECK(t.defined(), "{}: tensor '{}' is undefined", op, name);
}

void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected) {
  check_defined(op, name, t);
  HSA_CHECK(t.shape() == expected, "{}: '{}' has shape {}, expected {}", op, name, shape_str(t.shape()),
            shape_str(expected));
}

void check_ndim(const char* op, const char* name, const Tensor& t, int ndim) {
  check_defined(op, name, t);
  HSA_CHECK(t.ndim() == ndim, "{}: '{}' has shape {} ({} dims), expected {} dims", op, name, shape_str(t.shape()),
            t.ndim(), ndim);
}

void check_dtype(const char* op, const char* name, const Tensor& t, DType expected) {
  check_defined(op, name, t);
  HSA_CHECK(t.dtype() == expected, "{}: '{}' has dtype {}, expected {}", op, name, dtype_name(t.dtype()),
            dtype_name(expected));
}

void check_float(const char* op, const char* name, const Tensor& t) {
  check_defined(op, name, t);
  HSA_CHECK(is_floating(t.dtype()), "{}: '{}' has dtype {}, expected a floating type (f32, bf16, f64)", op, name,
            dtype_name(t.dtype()));
}

void check_same_dtype(const char* op, const char* name_a, const Tensor& a, const char* name_b, const Tensor& b) {
  HSA_CHECK(a.dtype() == b.dtype(), "{}: '{}' is {} but '{}' is {}", op, name_a, dtype_name(a.dtype()), name_b,
            dtype_name(b.dtype()));
}

}  // namespace hsa

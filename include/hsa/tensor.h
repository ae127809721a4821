// Tensor: a typed, strided view of reference-counted storage on one device.
// Owning tensors come from Tensor::empty/zeros/...; views (view, slice, select) share storage.
// While an ArenaScope is active on the thread, new CPU tensors are carved from its arena.
#pragma once
#include <hsa/dtype.h>
#include <hsa/error.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace hsa {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& shape);

// A block of device or host memory; frees itself through its deleter (none for arena blocks).
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::cpu;
  void (*deleter)(void*) = nullptr;
  std::shared_ptr<const void> owner;  // keeps external memory (a memory-mapped file) alive
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();
};

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
  // Copies host values into a new CPU tensor of the given dtype (converting).
  static Tensor from_values(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32);
  // A tensor over memory someone else owns; `owner` is kept alive as long as any view of it.
  static Tensor wrap(void* data, const Shape& shape, DType dtype, Device device, std::shared_ptr<const void> owner);
  static Tensor from_i32(const std::vector<int32_t>& values, const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int axis) const;  // negative axes count from the end
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::cpu; }
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  // Typed pointer to the first element; throws if T does not match the dtype.
  template <class T> T* data() const {
    HSA_CHECK(dtype_of<T>::value == dtype_, "Tensor::data: tensor is {}, accessed as {}", dtype_name(dtype_),
              dtype_name(dtype_of<T>::value));
    return reinterpret_cast<T*>(raw_data());
  }
  void* raw_data() const;

  // Views (share storage).
  Tensor view(const Shape& shape) const;  // contiguous only; one dim may be -1
  Tensor slice(int axis, int64_t start, int64_t end) const;
  Tensor select(int axis, int64_t index) const;  // drops the axis

  // Copies.
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;
  Tensor to(DType dtype) const;    // itself when already of that dtype
  Tensor to(Device device) const;  // itself when already there
  void copy_from(const Tensor& src);  // same shape; converts dtype; CPU only
  void fill(double value);            // CPU only
  void zero();

  // Element access for tests and tools (CPU, any dtype, converted through double).
  double item(const std::vector<int64_t>& index) const;
  double item() const;  // single-element tensors
  void set(const std::vector<int64_t>& index, double value);
  double get_flat(int64_t i) const;  // contiguous cpu tensors, row-major element i
  void set_flat(int64_t i, double value);
  std::vector<double> to_vector() const;  // row-major values

  std::string str() const;  // "f32[2, 3] cpu"

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_;
  Shape strides_;  // in elements
  DType dtype_ = DType::f32;
  int64_t linear_offset(const std::vector<int64_t>& index) const;
};

Shape contiguous_strides(const Shape& shape);

// ---- checks used by every op: the message names the op, the tensor, expected and actual ----
void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected);
void check_ndim(const char* op, const char* name, const Tensor& t, int ndim);
void check_dtype(const char* op, const char* name, const Tensor& t, DType expected);
void check_float(const char* op, const char* name, const Tensor& t);
void check_same_dtype(const char* op, const char* name_a, const Tensor& a, const char* name_b, const Tensor& b);
void check_defined(const char* op, const char* name, const Tensor& t);

}  // namespace hsa

// Deterministic random numbers, identical on every platform (std distributions are not).
#pragma once
#include <hsa/tensor.h>

#include <cstdint>

namespace hsa {

// splitmix64: small, fast, good enough for initialisation and sampling; state is one integer, so
// saving and restoring it (checkpoints) is trivial.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : state_(seed) {}
  uint64_t next_u64();
  double uniform();  // [0, 1)
  double normal();   // standard normal (Box-Muller)
  uint64_t below(uint64_t n);  // [0, n)
  uint64_t state() const { return state_; }

 private:
  uint64_t state_;
};

Tensor randn(const Shape& shape, uint64_t seed, double stddev = 1.0, DType dtype = DType::f32);
Tensor rand_uniform(const Shape& shape, uint64_t seed, double low, double high, DType dtype = DType::f32);

}  // namespace hsa

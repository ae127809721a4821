#include <hsa/random.h>

#include <cmath>

namespace hsa {

uint64_t Rng::next_u64() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  double u1 = uniform();
  double u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

uint64_t Rng::below(uint64_t n) { return n == 0 ? 0 : next_u64() % n; }

Tensor randn(const Shape& shape, uint64_t seed, double stddev, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  Rng rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.set_flat(i, rng.normal() * stddev);
  return t;
}

Tensor rand_uniform(const Shape& shape, uint64_t seed, double low, double high, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  Rng rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.set_flat(i, low + (high - low) * rng.uniform());
  return t;
}

}  // namespace hsa

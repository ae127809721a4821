// Finite-difference gradient checks in double precision, shared by every op's gradcheck test.
//
// Pattern: build f64 inputs, pick a random projection R of the output, let loss() = <forward(inputs), R>,
// compute the analytic gradients by calling backward with dy = R, then expect_gradients_match().
#pragma once
#include <hsa/random.h>
#include <hsa/tensor.h>

#include <functional>
#include <string>
#include <vector>

namespace hsa::testing {

struct GradInput {
  std::string name;
  Tensor* value;  // f64, contiguous; perturbed in place and restored
  Tensor grad;    // analytic gradient, same shape
};

struct GradcheckOptions {
  double eps = 1e-6;
  double rtol = 1e-5;
  double atol = 1e-8;
  int max_elements = 96;  // per input: larger inputs are checked at a deterministic random subset
};

// Adds a GoogleTest failure for every element whose central difference disagrees with the analytic gradient.
// Returns the largest error seen, relative to max(|numeric|, 1).
double expect_gradients_match(const std::function<double()>& loss, const std::vector<GradInput>& inputs,
                              GradcheckOptions options = {});

double dot(const Tensor& a, const Tensor& b);       // sum_i a_i * b_i, any float dtypes, same shape
double max_abs_diff(const Tensor& a, const Tensor& b);
double relative_error(const Tensor& got, const Tensor& expected);  // ||got - expected|| / ||expected||

inline Tensor randn64(const Shape& shape, uint64_t seed, double stddev = 1.0) {
  return randn(shape, seed, stddev, DType::f64);
}

}  // namespace hsa::testing

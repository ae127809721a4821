#include "common/gradcheck.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace hsa::testing {

double expect_gradients_match(const std::function<double()>& loss, const std::vector<GradInput>& inputs,
                              GradcheckOptions options) {
  double worst = 0;
  for (const GradInput& input : inputs) {
    Tensor& x = *input.value;
    EXPECT_EQ(x.dtype(), DType::f64) << input.name << ": gradient checks run in f64";
    EXPECT_TRUE(x.is_contiguous()) << input.name;
    if (!input.grad.defined()) {
      ADD_FAILURE() << input.name << ": no analytic gradient";
      continue;
    }
    EXPECT_EQ(input.grad.shape(), x.shape()) << input.name << ": gradient shape " << shape_str(input.grad.shape());
    Tensor grad = input.grad.to(DType::f64).contiguous();
    int64_t n = x.numel();
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    if (n > options.max_elements) {
      Rng rng(0x5eed + static_cast<uint64_t>(n));
      for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(static_cast<uint64_t>(i + 1))]);
      order.resize(options.max_elements);
    }
    double* values = x.data<double>();
    int reported = 0;
    for (int64_t i : order) {
      double saved = values[i];
      values[i] = saved + options.eps;
      double plus = loss();
      values[i] = saved - options.eps;
      double minus = loss();
      values[i] = saved;
      double numeric = (plus - minus) / (2 * options.eps);
      double analytic = grad.get_flat(i);
      double err = std::abs(numeric - analytic);
      worst = std::max(worst, err / std::max(std::abs(numeric), 1.0));
      if (err > options.atol + options.rtol * std::abs(numeric) && reported < 5) {
        ++reported;
        ADD_FAILURE() << input.name << "[" << i << "]: numeric " << numeric << " vs analytic " << analytic;
      }
    }
  }
  return worst;
}

double dot(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double s = 0;
  for (size_t i = 0; i < va.size(); ++i) s += va[i] * vb[i];
  return s;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

double relative_error(const Tensor& got, const Tensor& expected) {
  EXPECT_EQ(got.shape(), expected.shape());
  std::vector<double> vg = got.to_vector(), ve = expected.to_vector();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < vg.size(); ++i) {
    diff += (vg[i] - ve[i]) * (vg[i] - ve[i]);
    norm += ve[i] * ve[i];
  }
  return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

}  // namespace hsa::testing

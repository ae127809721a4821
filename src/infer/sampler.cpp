#include "infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace hsa {

namespace {

// The first largest logit. A broken model (NaN or inf weights) must fail, not decode garbage: NaN compares false,
// so an argmax would silently pick token 0.
template <class T> int64_t finite_argmax(const T* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 0; i < n; ++i) {
    HSA_CHECK(std::isfinite(x[i]), "sample_token: the model's logit of token {} is {}; its weights hold non-finite "
              "values (a diverged training run?)", i, double(x[i]));
    if (x[i] > x[best]) best = i;
  }
  return best;
}

}  // namespace

int32_t sample_token(const Tensor& logits, const SamplingOptions& options, Rng& rng) {
  check_ndim("sample_token", "logits", logits, 1);
  HSA_CHECK(options.temperature >= 0, "sample_token: temperature must be >= 0, got {}", options.temperature);
  HSA_CHECK(options.top_p > 0 && options.top_p <= 1, "sample_token: top_p must be in (0, 1], got {}", options.top_p);
  HSA_CHECK(logits.numel() > 0, "sample_token: empty logits");
  // Greedy decoding of f32 logits (every decode step on the cpu) reads them in place: no copy per token.
  if (options.temperature == 0 && logits.dtype() == DType::f32 && logits.device() == Device::cpu &&
      logits.is_contiguous())
    return static_cast<int32_t>(finite_argmax(logits.data<float>(), logits.numel()));
  std::vector<double> v = logits.to_vector();
  const int64_t n = static_cast<int64_t>(v.size());
  const int64_t best = finite_argmax(v.data(), n);
  if (options.temperature == 0) return static_cast<int32_t>(best);
  double mx = v[best], total = 0;
  std::vector<double> p(n);
  for (int64_t i = 0; i < n; ++i) total += p[i] = std::exp((v[i] - mx) / options.temperature);
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
  double kept = 0;
  int64_t keep = 0;
  while (keep < n && kept < options.top_p * total) kept += p[order[keep++]];
  double r = rng.uniform() * kept;
  for (int64_t i = 0; i < keep; ++i) {
    r -= p[order[i]];
    if (r <= 0) return static_cast<int32_t>(order[i]);
  }
  return static_cast<int32_t>(order[keep - 1]);
}

}  // namespace hsa

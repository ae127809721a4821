#include "infer/session.h"

#include <algorithm>
#include <vector>

namespace hsa {

Session::Session(const Model& model) : model_(model), state_(model.new_state()) {}

Tensor Session::feed_on_device(std::span<const int32_t> tokens) {
  HSA_CHECK(!tokens.empty(), "Session: no tokens to feed");
  Tensor ids = Tensor::from_i32(std::vector<int32_t>(tokens.begin(), tokens.end()),
                                {1, static_cast<int64_t>(tokens.size())});
  return model_.forward(ids, state_).select(0, 0);
}

Tensor Session::feed(std::span<const int32_t> tokens) {
  return feed_on_device(tokens).to(Device::cpu);  // sampling runs on the host
}

Tensor Session::prefill(std::span<const int32_t> tokens, int64_t segment,
                        const std::function<void(int64_t, int64_t)>& progress) {
  HSA_CHECK(!tokens.empty(), "Session::prefill: empty prompt");
  HSA_CHECK(segment > 0, "Session::prefill: segment size must be positive, got {}", segment);
  int64_t total = static_cast<int64_t>(tokens.size());
  Tensor last;
  for (int64_t start = 0; start < total; start += segment) {
    int64_t n = std::min(segment, total - start);
    Tensor logits = feed(tokens.subspan(start, n));
    last = logits.select(0, n - 1).contiguous();
    if (progress) progress(start + n, total);
  }
  return last;
}

Tensor Session::step(int32_t token) { return feed(std::span<const int32_t>(&token, 1)).select(0, 0).contiguous(); }

}  // namespace hsa

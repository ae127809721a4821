// Picking the next token from logits: greedy (temperature 0), temperature and nucleus (top-p) sampling.
#pragma once
#include <hsa/random.h>
#include <hsa/tensor.h>

namespace hsa {

struct SamplingOptions {
  double temperature = 0.0;  // 0: greedy
  double top_p = 1.0;        // keep the smallest set of tokens whose probability reaches top_p
};

// logits [V] (any float dtype, CPU).
int32_t sample_token(const Tensor& logits, const SamplingOptions& options, Rng& rng);

}  // namespace hsa

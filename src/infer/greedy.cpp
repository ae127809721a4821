#include "infer/greedy.h"

#include "infer/sampler.h"
#include "infer/session.h"
#include "util/progress.h"
#include "text/tokenizer.h"

#include <hsa/random.h>

#include <chrono>

namespace hsa {

GreedyAnswer answer_greedily(const Model& model, std::span<const int32_t> prompt, int64_t max_new_tokens,
                             int64_t segment, int32_t eos_id) {
  GreedyAnswer answer;
  Session session(model);
  auto t0 = std::chrono::steady_clock::now();
  Tensor logits = session.prefill(prompt, segment);
  answer.prefill_s = seconds_since(t0);
  Rng rng(1);  // unused: greedy decoding draws nothing
  auto t1 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < max_new_tokens; ++i) {
    const int32_t next = sample_token(logits, {}, rng);
    if (next == eos_id) break;
    answer.tokens.push_back(next);
    if (i + 1 < max_new_tokens) logits = session.step(next);
  }
  answer.decode_s = seconds_since(t1);
  answer.state_bytes = session.state_bytes();
  return answer;
}

}  // namespace hsa

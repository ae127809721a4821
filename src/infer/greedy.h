// Greedy answering: a prompt fed to a fresh session, then the most likely token, one at a time, until an end of
// sequence or a token budget. What `hsa demo`, `hsa ruler` and the shipped-model tests do with each sample.
#pragma once
#include "model/model.h"
#include "text/tokenizer.h"

#include <cstdint>
#include <span>
#include <vector>

namespace hsa {

struct GreedyAnswer {
  std::vector<int32_t> tokens;  // without the end of sequence
  double prefill_s = 0, decode_s = 0;
  size_t state_bytes = 0;  // of the session after the prompt and the answer
};

// Prefills `prompt` in segments of at most `segment` tokens, then decodes at most `max_new_tokens` greedily,
// stopping before `eos_id` (the model's tokenizer's eos_id()).
GreedyAnswer answer_greedily(const Model& model, std::span<const int32_t> prompt, int64_t max_new_tokens,
                             int64_t segment, int32_t eos_id = ByteTokenizer::kEos);

}  // namespace hsa

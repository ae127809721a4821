#include "model/flops.h"

#include "model/param_spec.h"
#include "kernel/shapes.h"

#include <algorithm>

namespace hsa {

namespace {
// Mean over t in [0, L) of min(t + 1, w): keys a query sees under a causal window w.
double mean_visible(int64_t L, int64_t w) {
  double total = 0;
  for (int64_t t = 0; t < L; ++t) total += double(std::min<int64_t>(t + 1, w));
  return total / double(L);
}
}  // namespace

TrainingFlops training_flops_per_token(const ModelConfig& c, int64_t seq_len) {
  HSA_CHECK(seq_len > 0, "training_flops_per_token: seq_len must be positive, got {}", seq_len);
  TrainingFlops f;
  // The embedding is a gather, not a matmul; a tied LM head is the same matrix used as one, so it counts once.
  double matmul_params = double(active_parameters_per_token(c));
  if (!c.tie_word_embeddings) matmul_params -= double(c.vocab_size * c.hidden_size);
  const double dq = double(c.head_dim * c.num_attention_heads);
  if (c.has_memory() && c.chunk_encoder_layers > 0) {
    // The encoder's blocks do not run once per token: only complete chunks are encoded, S + 1 rows each.
    double encoder_params = 0;
    for (const ParamSpec& s : model_param_specs(c))
      if (s.name.starts_with("memory.encoder.")) encoder_params += double(shape_numel(s.shape));
    matmul_params -= encoder_params;
    const double S = double(c.chunk_size), encoded = double(seq_len / c.chunk_size) * S / double(seq_len);
    const double rows = encoded * (S + 1) / S;  // encoder rows per token of the sequence
    f.encoder = rows * (6.0 * encoder_params + double(c.chunk_encoder_layers) * 3.0 * 4.0 * dq * (S + 1));
  }
  f.matmul = 6.0 * matmul_params;
  for (int64_t i = 0; i < c.num_layers(); ++i) f.swa += 3.0 * 4.0 * dq * mean_visible(seq_len, c.window_of_layer(i));
  if (c.num_upper_groups > 0) {
    double slots = 0, chunks = 0;  // mean filled slots and complete earlier chunks per position
    for (int64_t t = 0; t < seq_len; ++t) {
      // As if without hsa_window_mask (an upper bound); the chunks that exist never limit a training sequence.
      const int64_t complete = visible_chunks(t, c.chunk_size, 0, seq_len / c.chunk_size);
      slots += double(std::min(complete, c.chunk_topk));
      chunks += double(complete);
    }
    slots /= double(seq_len);
    chunks /= double(seq_len);
    const double hsa_layers = double(c.num_upper_groups);
    f.hsa = hsa_layers * 3.0 * 4.0 * dq * double(c.chunk_size) * slots;
    f.retrieval = hsa_layers * 3.0 * 2.0 * double(c.retrieval_dim) * chunks;
  }
  return f;
}

}  // namespace hsa

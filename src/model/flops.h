// Model FLOPs of a training step, counted the standard way (docs/architecture.md §9): 6 FLOPs per active matmul
// parameter per token (2 forward, 4 backward) plus the attention terms that parameters do not capture, also
// tripled for the backward: SWA 4·D·HQ per visible key, HSA chunk attention 4·D·HQ per key of each filled slot,
// retrieval 2·d_r per complete earlier chunk; the chunk encoder runs its blocks on S + 1 rows per complete chunk
// (its parameters once per row, its attention 4·D·HQ per row and key of the chunk). Averages over the positions of a sequence of seq_len tokens, so a
// short sequence (few visible keys, few complete chunks) counts what it really costs. Recomputation and
// elementwise work are not counted: this is the numerator of "model FLOP utilisation".
#pragma once
#include "model/config.h"

#include <cstdint>

namespace hsa {

struct TrainingFlops {
  double matmul = 0;     // 6 x active matmul parameters, per token
  double swa = 0;        // per token, all layers, forward + backward
  double hsa = 0;        // chunk attention, per token, forward + backward
  double retrieval = 0;  // landmark scores, per token, forward + backward
  double encoder = 0;    // chunk encoder (matmuls and attention), per token, forward + backward
  double per_token() const { return matmul + swa + hsa + retrieval + encoder; }
};

TrainingFlops training_flops_per_token(const ModelConfig& config, int64_t seq_len);

}  // namespace hsa

// When a CPU kernel should open an OpenMP region. Tiny problems (gradient checks, single-token decoding) run on
// the calling thread: a parallel region costs microseconds of wake-up and barrier, and on a loaded machine a
// descheduled worker stalls every barrier, which made the f64 model gradient check 30x slower.
#pragma once
#include <cstdint>

namespace hsa::cpu {

constexpr int64_t kMinParallelWork = int64_t(1) << 15;  // elements or multiply-adds

inline bool worth_parallel(int64_t work) { return work >= kMinParallelWork; }

}  // namespace hsa::cpu

// CPU embedding kernels. table, dtable [V, dm]; ids i32 [n] (flattened); y, dy [n, dm].
// The ids are validated by the op (every id in [0, V)) before these run.
#pragma once
#include <cstdint>

namespace hsa::cpu {

// y[i] = table[ids[i]]. A pure gather, so it also runs on bf16 storage (no f32 copy of a large table).
template <class T> void embedding_forward(const T* table, const int32_t* ids, T* y, int64_t n, int64_t dm);

// dtable[v] = sum over positions i with ids[i] == v of dy[i], summed in ascending i for every v: the result does
// not depend on the thread count, and no two threads write the same row.
template <class T>
void embedding_backward(const T* dy, const int32_t* ids, T* dtable, int64_t n, int64_t dm, int64_t vocab_size);

}  // namespace hsa::cpu

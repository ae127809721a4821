// CPU embedding kernels. table, dtable [V, dm]; ids [n]; y, dy [n, dm].
#pragma once
#include <cstdint>

namespace hsa::cpu {

template <class T> void embedding_forward(const T* table, const int32_t* ids, T* y, int64_t n, int64_t dm);
// dtable must be zeroed by the caller. Rows are added in token order, so results are deterministic.
template <class T> void embedding_backward(const T* dy, const int32_t* ids, T* dtable, int64_t n, int64_t dm);

}  // namespace hsa::cpu

// Device-side helpers of the HSA kernels (not a public header): stream-ordered scratch buffers, the chunk-major
// routing (entries grouped by the chunk they selected) that the chunk attention and the retrieval backward share,
// and split plans (flat lists of thread blocks over the routing's items, sized on the host). Nothing here waits
// for the device. Element conversions, warp reductions and the stream come from cuda/kernel_util.cuh.
//   indices i32 [B, L, H, K] (-1 = empty slot); entry = one (b, t, h, slot) with a chunk; flat f = ((b*L+t)*H+h)*K+i.
//   item = (b*H + h)*C + c: one (batch, KV head, chunk) triple.
#pragma once
#include "cuda/kernel_util.cuh"

#include <hsa/error.h>

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace hsa::cuda::detail {

// Entries grouped by item, stable (ascending flat index inside an item): a radix sort on the item key, which is
// itself a counting sort (histogram, scan, scatter) and keeps equal keys in input order, so every later sum over
// an item's entries has a fixed order. Empty slots sort last under the key B*H*C.
// It reads nothing but the indices, so the chunk attention forward's routing serves its backward and the retrieval
// backward of the same indices too (ops/hsa_routing.h): one sort per HSA layer and training step.
struct Routing {
  int64_t slots = 0;   // B*L*H*K: the entry arrays' capacity; valid entries are the prefix [0, begin[items])
  int64_t items = 0;   // B*H*C
  int32_t* flat = nullptr;      // [slots] flat index of entry e
  int32_t* begin = nullptr;     // [items + 1] first entry of each item
  int32_t* entry_of = nullptr;  // [slots] entry of flat index f, -1 for an empty slot
  // Owns the arrays above and nothing else (the sort's keys and temporary storage are freed once it is queued),
  // so a routing kept from the forward to the backward holds 8 bytes per slot and 4 per item.
  std::unique_ptr<DeviceBuffer<std::byte>> storage;
};

// Builds the routing on stream() without waiting for the device. An index outside [-1, C) is routed like an empty
// slot (so no kernel reads outside the memory) and reported through the deferred input-error record (runtime.h)
// under `error_code` (index_error_code): the one at the lowest flat position, or at the highest with report_last
// (the CPU retrieval backward's rule), so the message does not depend on thread timing. It throws at the next
// cuda::synchronize(). B, L, H, K, C as above; needs B*L*H*K < 2^31. Counted by routing_builds() (hsa_support.h).
Routing build_routing(const int32_t* indices, int64_t B, int64_t L, int64_t H, int64_t K, int64_t C, int error_code,
                      bool report_last = false);

// `given` when there is one (a routing of these indices that the caller kept, typically from the forward: it is
// checked against the dims, and bad indices were reported when it was built), else one built into `*own` as
// build_routing does.
const Routing& given_or_built(const Routing* given, Routing* own, const int32_t* indices, int64_t B, int64_t L,
                              int64_t H, int64_t K, int64_t C, int error_code, bool report_last = false);

// The input-error code for a chunk index outside [-1, C) in `tensor` ([B, L, H, K]) of `op`; registers the message
// on first use (call it once per call site: static const int code = ...).
int index_error_code(const char* op, const char* tensor);

// ---- split plans ------------------------------------------------------------------------------------------------
// Item i holds n_i = begin[i + 1] - begin[i] entries, n_i * unit work units (unit = 1: entries; unit = G: query
// rows). It gets ceil(n_i * unit / per_block) blocks, split s taking units [s * per_block, (s + 1) * per_block), so a
// chunk chosen by many tokens spreads over many blocks. Its blocks are numbered from
//   first_block(i) = floor(begin[i] * unit / per_block) + i,
// which leaves every item enough numbers (floor((a + n) u / P) - floor(a u / P) + 1 >= ceil(n u / P)) without a
// scan over the items, and bounds the grid on the host: every number is below floor(slots * unit / per_block) +
// items. Numbers past an item's last split (at most one per item, plus the room left by the empty slots) name no
// work: such a block exits at once.
__host__ __device__ __forceinline__ int64_t plan_first_block(int64_t begin_i, int64_t item, int64_t unit,
                                                             int64_t per_block) {
  return begin_i * unit / per_block + item;
}

struct SplitPlan {
  int64_t unit = 1, per_block = 1;
  int64_t blocks = 0;             // the grid: floor(slots * unit / per_block) + items (0 without items)
  int32_t* block_item = nullptr;  // [blocks] the item each block number falls in (device)
  std::unique_ptr<DeviceBuffer<std::byte>> storage;
};

// Fills block_item on stream() (one thread per block number, a binary search over the items: no serial pass).
SplitPlan plan_splits(const Routing& rt, int64_t unit, int64_t per_block);

// The shared memory one block may opt in to on the current device (bytes; read once per process).
int max_smem_optin();
// The current device's SM count (read once per process).
int sm_count();

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace hsa::cuda::detail

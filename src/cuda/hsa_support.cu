#include "cuda/hsa_support.cuh"
#include "cuda/hsa_support.h"

#include "cuda/copy.h"

#include <cub/device/device_radix_sort.cuh>

#include <fmt/format.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <string>

namespace hsa::cuda {

namespace detail {

namespace {


// Flat positions of the indices outside [-1, C): lowest and highest (memset to 0xFF: ULLONG_MAX and -1 = none).
struct BadIndices {
  unsigned long long first;
  long long last;
};

__global__ void routing_keys(const int32_t* __restrict indices, int64_t n, int64_t L, int64_t H, int64_t K,
                             int64_t C, uint32_t* __restrict keys, int32_t* __restrict vals, BadIndices* bad) {
  int64_t f = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (f >= n) return;
  int32_t c = indices[f];
  const int64_t items = (n / (L * H * K)) * H * C;
  uint32_t key = uint32_t(items);  // empty slots (and bad indices, skipped) sort last
  if (c < -1 || c >= C) {
    atomicMin(&bad->first, (unsigned long long)f);
    atomicMax(&bad->last, (long long)f);
  } else if (c >= 0) {
    int64_t h = (f / K) % H, b = f / (K * H * L);
    key = uint32_t((b * H + h) * C + c);
  }
  keys[f] = key;
  vals[f] = int32_t(f);
}

// begin[item] = first sorted position whose key is >= item, for every item in [0, items]. Thread 0 also reports the
// bad index that routing_keys found (the lowest, or the highest with report_last): a later kernel than routing_keys,
// so the choice is final, and no launch of its own.
__global__ void routing_begin(const uint32_t* __restrict keys, int64_t n, int64_t items, int32_t* __restrict begin,
                              int32_t* __restrict entry_of, const int32_t* __restrict flat,
                              const int32_t* __restrict indices, const BadIndices* bad, int64_t C, bool report_last,
                              long long* error_record, int error_code) {
  int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e == 0 && bad->last >= 0) {
    const long long f = report_last ? bad->last : (long long)bad->first;
    report_input_error(error_record, error_code, f, indices[f], C);
  }
  if (e > n) return;
  int64_t prev = e == 0 ? -1 : int64_t(keys[e - 1]);
  int64_t cur = e == n ? items + 1 : int64_t(keys[e]);
  for (int64_t item = prev + 1; item <= cur && item <= items; ++item) begin[item] = int32_t(e);
  if (e < n) entry_of[flat[e]] = int64_t(keys[e]) < items ? int32_t(e) : -1;
}

// block_item[j] = the last item i with plan_first_block(i) <= j (see SplitPlan), for every block number j.
__global__ void plan_splits_kernel(const int32_t* __restrict begin, int64_t items, int64_t unit, int64_t per_block,
                                   int64_t blocks, int32_t* __restrict block_item) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= blocks) return;
  int64_t lo = 0, hi = items - 1;  // plan_first_block(0) = 0 <= j
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (plan_first_block(begin[mid], mid, unit, per_block) <= j)
      lo = mid;
    else
      hi = mid - 1;
  }
  block_item[j] = int32_t(lo);
}

int end_bit_for(uint64_t max_key) {
  int bits = 1;
  while (bits < 32 && (max_key >> bits) != 0) ++bits;
  return bits;
}

size_t align_up(size_t x) { return (x + 255) & ~size_t(255); }

std::atomic<int64_t> routing_build_count{0};

}  // namespace


int max_smem_optin() {
  static int bytes = [] {
    int device = 0, value = 0;
    HSA_CUDA_CHECK(cudaGetDevice(&device));
    HSA_CUDA_CHECK(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return value;
  }();
  return bytes;
}

int sm_count() {
  static int count = [] {
    int device = 0, value = 0;
    HSA_CUDA_CHECK(cudaGetDevice(&device));
    HSA_CUDA_CHECK(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, device));
    return value;
  }();
  return count;
}

Routing build_routing(const int32_t* indices, int64_t B, int64_t L, int64_t H, int64_t K, int64_t C, int error_code,
                      bool report_last) {
  Routing rt;
  const int64_t n = B * L * H * K, items = B * H * C;
  HSA_CHECK(n < INT32_MAX && items < INT32_MAX, "hsa cuda routing: B*L*H*K = {} or B*H*C = {} exceeds 2^31", n,
            items);
  routing_build_count.fetch_add(1, std::memory_order_relaxed);
  rt.slots = n;
  rt.items = items;
  const int bits = end_bit_for(uint64_t(items));
  size_t sort_bytes = 0;
  HSA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, (const uint32_t*)nullptr, (uint32_t*)nullptr,
                                                 (const int32_t*)nullptr, (int32_t*)nullptr, int(n), 0, bits,
                                                 stream()));
  // Two allocations: what the routing keeps (flat = the sort's values out, entry_of, begin) and the scratch of the
  // build (keys in/out, values in, bad-index positions, sort temp), back in the cache when this returns (the
  // allocator is stream-ordered: its next user queues behind these kernels).
  const size_t o_flat = 0, o_entry = o_flat + align_up(n * 4), o_begin = o_entry + align_up(n * 4),
               kept = o_begin + align_up((items + 1) * 4);
  const size_t o_keys = 0, o_keys_out = o_keys + align_up(n * 4), o_vals = o_keys_out + align_up(n * 4),
               o_bad = o_vals + align_up(n * 4), o_temp = o_bad + align_up(sizeof(BadIndices)),
               scratch_bytes = o_temp + align_up(sort_bytes);
  rt.storage = std::make_unique<DeviceBuffer<std::byte>>(int64_t(kept));
  DeviceBuffer<std::byte> scratch{int64_t(scratch_bytes)};
  char* base = rt.storage->as<char>();
  char* work = scratch.as<char>();
  auto* keys = reinterpret_cast<uint32_t*>(work + o_keys);
  auto* keys_out = reinterpret_cast<uint32_t*>(work + o_keys_out);
  auto* vals = reinterpret_cast<int32_t*>(work + o_vals);
  rt.flat = reinterpret_cast<int32_t*>(base + o_flat);
  rt.entry_of = reinterpret_cast<int32_t*>(base + o_entry);
  rt.begin = reinterpret_cast<int32_t*>(base + o_begin);
  auto* bad = reinterpret_cast<BadIndices*>(work + o_bad);
  HSA_CUDA_CHECK(cudaMemsetAsync(bad, 0xff, sizeof(BadIndices), stream()));
  const int threads = 256;
  if (n > 0) {
    routing_keys<<<unsigned(ceil_div(n, threads)), threads, 0, stream()>>>(indices, n, L, H, K, C, keys, vals, bad);
    check_launch("routing_keys");
    HSA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(work + o_temp, sort_bytes, keys, keys_out, vals, rt.flat, int(n),
                                                   0, bits, stream()));
  }
  routing_begin<<<unsigned(ceil_div(n + 1, threads)), threads, 0, stream()>>>(
      keys_out, n, items, rt.begin, rt.entry_of, rt.flat, indices, bad, C, report_last, input_error_record(),
      error_code);
  check_launch("routing_begin");
  return rt;
}

const Routing& given_or_built(const Routing* given, Routing* own, const int32_t* indices, int64_t B, int64_t L,
                              int64_t H, int64_t K, int64_t C, int error_code, bool report_last) {
  if (!given) return *own = build_routing(indices, B, L, H, K, C, error_code, report_last);
  HSA_CHECK(given->slots == B * L * H * K && given->items == B * H * C,
            "hsa cuda routing: the given routing has {} slots and {} (batch, head, chunk) items, these indices "
            "[B, L, H, K] = [{}, {}, {}, {}] with C = {} need {} and {}",
            given->slots, given->items, B, L, H, K, C, B * L * H * K, B * H * C);
  return *given;
}

int index_error_code(const char* op, const char* tensor) {
  const std::string what = fmt::format(
      "{}: '{}' [B, L, H, K] holds a value that is neither -1 (an empty slot) nor a chunk in [0, C)", op, tensor);
  return input_error_code(what.c_str());
}

SplitPlan plan_splits(const Routing& rt, int64_t unit, int64_t per_block) {
  SplitPlan plan;
  plan.unit = unit;
  plan.per_block = per_block;
  plan.blocks = rt.items > 0 ? rt.slots * unit / per_block + rt.items : 0;
  HSA_CHECK(plan.blocks < INT32_MAX, "hsa cuda split plan: {} blocks exceed 2^31", plan.blocks);
  plan.storage = std::make_unique<DeviceBuffer<std::byte>>(int64_t(plan.blocks) * int64_t(sizeof(int32_t)));
  plan.block_item = plan.storage->as<int32_t>();
  if (plan.blocks > 0) {
    const int threads = 256;
    plan_splits_kernel<<<unsigned(ceil_div(plan.blocks, threads)), threads, 0, stream()>>>(
        rt.begin, rt.items, unit, per_block, plan.blocks, plan.block_item);
    check_launch("plan_splits_kernel");
  }
  return plan;
}

}  // namespace detail

int64_t routing_builds() { return detail::routing_build_count.load(std::memory_order_relaxed); }

void hsa_convert(DType src_dtype, const void* src, DType dst_dtype, void* dst, int64_t n) {
  auto ok = [](DType t) { return t == DType::f32 || t == DType::bf16; };
  HSA_CHECK(ok(src_dtype) && ok(dst_dtype), "hsa_convert: only f32 and bf16 on cuda, got {} -> {}",
            dtype_name(src_dtype), dtype_name(dst_dtype));
  if (n == 0) return;
  if (src_dtype == dst_dtype) {
    HSA_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * dtype_size(src_dtype), cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  // The tensor copy kernel (16-byte packs). It runs on the runtime's stream, a blocking stream: ordered with the
  // legacy default stream that these kernels use.
  const int64_t one = 1;
  const StridedLayout flat = strided_layout("hsa_convert", &n, &one, 1);
  copy_strided(dst, dst_dtype, flat, src, src_dtype, flat);
}

}  // namespace hsa::cuda

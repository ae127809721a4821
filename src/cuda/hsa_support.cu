#include "cuda/hsa_support.cuh"
#include "cuda/hsa_support.h"

#include "cuda/copy.h"

#include <cub/device/device_radix_sort.cuh>

#include <climits>
#include <cstdint>

namespace hsa::cuda {

namespace detail {

namespace {

// Keep freed pool memory instead of returning it to the OS at every synchronisation: the next call reuses it.
void configure_pool_once() {
  static bool done = [] {
    int device = 0;
    cudaMemPool_t pool;
    if (cudaGetDevice(&device) == cudaSuccess && cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess) {
      uint64_t threshold = UINT64_MAX;
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold);
    }
    cudaGetLastError();
    return true;
  }();
  (void)done;
}

struct Stats {
  unsigned long long first_bad;  // ULLONG_MAX = none
  long long last_bad;            // -1 = none
  int max_item_entries;
};

__global__ void routing_keys(const int32_t* __restrict indices, int64_t n, int64_t L, int64_t H, int64_t K,
                             int64_t C, uint32_t* __restrict keys, int32_t* __restrict vals, Stats* stats) {
  int64_t f = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (f >= n) return;
  int32_t c = indices[f];
  const int64_t items = (n / (L * H * K)) * H * C;
  uint32_t key = uint32_t(items);  // empty slots sort last
  if (c < -1 || c >= C) {
    atomicMin(&stats->first_bad, (unsigned long long)f);
    atomicMax(&stats->last_bad, (long long)f);
  } else if (c >= 0) {
    int64_t h = (f / K) % H, b = f / (K * H * L);
    key = uint32_t((b * H + h) * C + c);
  }
  keys[f] = key;
  vals[f] = int32_t(f);
}

// begin[item] = first sorted position whose key is >= item, for every item in [0, items].
__global__ void routing_begin(const uint32_t* __restrict keys, int64_t n, int64_t items, int32_t* __restrict begin,
                              int32_t* __restrict entry_of, const int32_t* __restrict flat) {
  int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e > n) return;
  int64_t prev = e == 0 ? -1 : int64_t(keys[e - 1]);
  int64_t cur = e == n ? items + 1 : int64_t(keys[e]);
  for (int64_t item = prev + 1; item <= cur && item <= items; ++item) begin[item] = int32_t(e);
  if (e < n) entry_of[flat[e]] = int64_t(keys[e]) < items ? int32_t(e) : -1;
}

__global__ void routing_max(const int32_t* __restrict begin, int64_t items, Stats* stats) {
  int64_t item = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (item >= items) return;
  atomicMax(&stats->max_item_entries, begin[item + 1] - begin[item]);
}

int end_bit_for(uint64_t max_key) {
  int bits = 1;
  while (bits < 32 && (max_key >> bits) != 0) ++bits;
  return bits;
}

size_t align_up(size_t x) { return (x + 255) & ~size_t(255); }

}  // namespace

Scratch::Scratch(size_t bytes) {
  configure_pool_once();
  check_cuda(cudaMallocAsync(&p_, bytes == 0 ? 256 : bytes, stream()), "cudaMallocAsync");
}

Scratch::~Scratch() {
  if (p_) cudaFreeAsync(p_, stream());
}

int max_smem_optin() {
  static int bytes = [] {
    int device = 0, value = 0;
    check_cuda(cudaGetDevice(&device), "cudaGetDevice");
    check_cuda(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
               "cudaDeviceGetAttribute");
    return value;
  }();
  return bytes;
}

Routing build_routing(const int32_t* indices, int64_t B, int64_t L, int64_t H, int64_t K, int64_t C) {
  Routing rt;
  const int64_t n = B * L * H * K, items = B * H * C;
  HSA_CHECK(n < INT32_MAX && items < INT32_MAX, "hsa cuda routing: B*L*H*K = {} or B*H*C = {} exceeds 2^31", n,
            items);
  rt.slots = n;
  rt.items = items;
  const int bits = end_bit_for(uint64_t(items));
  size_t sort_bytes = 0;
  check_cuda(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, (const uint32_t*)nullptr, (uint32_t*)nullptr,
                                             (const int32_t*)nullptr, (int32_t*)nullptr, int(n), 0, bits, stream()),
             "cub::DeviceRadixSort (size query)");
  // One allocation: keys in/out, values in, flat (values out), entry_of, begin, stats, sort temp.
  const size_t o_keys = 0, o_keys_out = o_keys + align_up(n * 4), o_vals = o_keys_out + align_up(n * 4),
               o_flat = o_vals + align_up(n * 4), o_entry = o_flat + align_up(n * 4),
               o_begin = o_entry + align_up(n * 4), o_stats = o_begin + align_up((items + 1) * 4),
               o_temp = o_stats + align_up(sizeof(Stats)), total = o_temp + align_up(sort_bytes);
  rt.storage = std::make_unique<Scratch>(total);
  char* base = rt.storage->as<char>();
  auto* keys = reinterpret_cast<uint32_t*>(base + o_keys);
  auto* keys_out = reinterpret_cast<uint32_t*>(base + o_keys_out);
  auto* vals = reinterpret_cast<int32_t*>(base + o_vals);
  rt.flat = reinterpret_cast<int32_t*>(base + o_flat);
  rt.entry_of = reinterpret_cast<int32_t*>(base + o_entry);
  rt.begin = reinterpret_cast<int32_t*>(base + o_begin);
  auto* stats = reinterpret_cast<Stats*>(base + o_stats);
  Stats init{ULLONG_MAX, -1, 0};
  check_cuda(cudaMemcpyAsync(stats, &init, sizeof(Stats), cudaMemcpyHostToDevice, stream()), "cudaMemcpyAsync");
  const int threads = 256;
  if (n > 0) {
    routing_keys<<<unsigned(ceil_div(n, threads)), threads, 0, stream()>>>(indices, n, L, H, K, C, keys, vals, stats);
    check_cuda(cudaGetLastError(), "routing_keys");
    check_cuda(cub::DeviceRadixSort::SortPairs(base + o_temp, sort_bytes, keys, keys_out, vals, rt.flat, int(n), 0,
                                               bits, stream()),
               "cub::DeviceRadixSort");
  }
  routing_begin<<<unsigned(ceil_div(n + 1, threads)), threads, 0, stream()>>>(keys_out, n, items, rt.begin,
                                                                               rt.entry_of, rt.flat);
  check_cuda(cudaGetLastError(), "routing_begin");
  if (items > 0) {
    routing_max<<<unsigned(ceil_div(items, threads)), threads, 0, stream()>>>(rt.begin, items, stats);
    check_cuda(cudaGetLastError(), "routing_max");
  }
  Stats host{};
  check_cuda(cudaMemcpyAsync(&host, stats, sizeof(Stats), cudaMemcpyDeviceToHost, stream()), "cudaMemcpyAsync");
  check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize (routing)");
  rt.max_item_entries = host.max_item_entries;
  if (host.first_bad != ULLONG_MAX) {
    rt.first_bad = int64_t(host.first_bad);
    rt.last_bad = host.last_bad;
    check_cuda(cudaMemcpy(&rt.first_bad_value, indices + rt.first_bad, 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
    check_cuda(cudaMemcpy(&rt.last_bad_value, indices + rt.last_bad, 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
  }
  return rt;
}

}  // namespace detail

void hsa_convert(DType src_dtype, const void* src, DType dst_dtype, void* dst, int64_t n) {
  using detail::check_cuda;
  using detail::stream;
  auto ok = [](DType t) { return t == DType::f32 || t == DType::bf16; };
  HSA_CHECK(ok(src_dtype) && ok(dst_dtype), "hsa_convert: only f32 and bf16 on cuda, got {} -> {}",
            dtype_name(src_dtype), dtype_name(dst_dtype));
  if (n == 0) return;
  if (src_dtype == dst_dtype) {
    check_cuda(cudaMemcpyAsync(dst, src, size_t(n) * dtype_size(src_dtype), cudaMemcpyDeviceToDevice, stream()),
               "cudaMemcpyAsync");
    return;
  }
  // The tensor copy kernel (16-byte packs). It runs on the runtime's stream, a blocking stream: ordered with the
  // legacy default stream that these kernels use.
  const int64_t one = 1;
  const StridedLayout flat = strided_layout("hsa_convert", &n, &one, 1);
  copy_strided(dst, dst_dtype, flat, src, src_dtype, flat);
}

}  // namespace hsa::cuda

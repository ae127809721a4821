// The K/V pages of the chunks beyond the device tier (docs/architecture.md "Chunk memory tiers"): page i holds
// chunk first_chunk + i as [K | V], each [S, H, D] contiguous. The first host_pages live in host memory (pinned
// on cuda, so the copies to the GPU run asynchronously), the rest in a scratch file on disk (memory-mapped,
// created on the first disk page and removed with this object). Append-only.
//
// Reads go through fetch(): each page is copied where the model runs, from a small LRU cache of recently used
// pages when it is there (cache_pages of them), else from host memory or the mapped file (and then kept in the
// cache). The copies are side copies (tensor/device_memory.h): the caller brackets fetches with
// side_copies_begin/end and orders the compute stream after them. Pages in host memory (pinned and mapped on
// cuda) and in the cache go in one side_gather with the caller's own copies (one kernel on cuda); only pages on
// disk are copied one by one. A SpilledPages object is shared by the copies of a ChunkMemory (possibly on several
// threads): append and fetch hold a lock.
#pragma once
#include "model/memory_tiers.h"
#include "tensor/device_memory.h"
#include "util/scratch_file.h"

#include <hsa/tensor.h>

#include <list>
#include <mutex>
#include <memory>
#include <unordered_map>
#include <vector>

namespace hsa {

struct TierStats {
  int64_t fetched = 0;     // pages requested through fetch()
  int64_t cache_hits = 0;  // of those, served from the cache
  int64_t host_reads = 0;  // copied from host memory
  int64_t disk_reads = 0;  // copied from the mapped file
};

class SpilledPages {
 public:
  // page_shape: [S, H, D] of one chunk's keys (and values); device: where fetched pages go.
  SpilledPages(const MemoryTiers& tiers, const Shape& page_shape, DType dtype, Device device);
  ~SpilledPages();
  SpilledPages(const SpilledPages&) = delete;
  SpilledPages& operator=(const SpilledPages&) = delete;

  int64_t size() const { return static_cast<int64_t>(pages_.size()); }
  int64_t host_pages() const { return std::min<int64_t>(size(), host_capacity_); }
  int64_t disk_pages() const { return size() - host_pages(); }
  size_t page_bytes() const { return page_bytes_; }
  size_t bytes() const { return static_cast<size_t>(size()) * page_bytes_; }
  size_t cache_bytes() const { return cache_.defined() ? cache_.nbytes() : 0; }
  TierStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  // Appends one page from a chunk's keys and values ([S, H, D] each, on any device).
  void append(const Tensor& k, const Tensor& v);
  // Appends a copy of page i of `other` (same shape and dtype): forking a memory that another copy grew past.
  void append_copy(const SpilledPages& other, int64_t i);
  // Page `page` into k_dst / v_dst (page_bytes()/2 each, where the model runs).
  struct Request {
    int64_t page;
    void* k_dst;
    void* v_dst;
  };
  // Queues the copies of every request, in order through the cache (hits, misses and evictions as if the pages
  // were fetched one by one). Adds its copies to `gather` (bytes: page_bytes()/2, possibly holding the caller's
  // copies of other pages already) and queues it, under this store's lock: queued copies follow the cache's order.
  void fetch(const std::vector<Request>& requests, PageGather& gather);

 private:
  MemoryTiers tiers_;
  Shape page_shape_;
  DType dtype_;
  Device device_;
  size_t page_bytes_;
  int64_t host_capacity_;
  std::vector<char*> pages_;      // host address of each page (host block or mapped file)
  std::vector<char*> host_blocks_;  // host tier allocations, 64 pages each (the last may hold fewer)
  std::unique_ptr<ScratchFile> disk_;
  // LRU cache: slot tensor [cache_pages, 2, S, H, D] where the model runs; page -> slot; most recent first.
  Tensor cache_;
  std::list<int64_t> lru_;
  std::unordered_map<int64_t, std::pair<int64_t, std::list<int64_t>::iterator>> cached_;  // page -> (slot, lru pos)
  TierStats stats_;
  mutable std::mutex mu_;
  char* new_page();
};

}  // namespace hsa

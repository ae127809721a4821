#include "model/spilled_pages.h"

#include "tensor/device_memory.h"

#include <cstring>

namespace hsa {

namespace {
// The disk tier grows by this many pages at a time (one posix_fallocate + mmap each), and the host tier allocates
// this many at a time (cudaHostAlloc is slow: one call per page would dominate a long prefill).
constexpr int64_t kPagesPerSegment = 64;
}  // namespace

SpilledPages::SpilledPages(const MemoryTiers& tiers, const Shape& page_shape, DType dtype, Device device)
    : tiers_(tiers), page_shape_(page_shape), dtype_(dtype), device_(device) {
  page_bytes_ = 2 * static_cast<size_t>(shape_numel(page_shape)) * dtype_size(dtype);
  host_capacity_ = pages_in(tiers.host_budget, page_bytes_);
}

SpilledPages::~SpilledPages() {
  for (char* b : host_blocks_) host_staging_free(device_, b);
}

char* SpilledPages::new_page() {
  if (size() < host_capacity_) {
    const int64_t in_block = size() % kPagesPerSegment;
    if (in_block == 0) {
      const size_t bytes = static_cast<size_t>(std::min(kPagesPerSegment, host_capacity_ - size())) * page_bytes_;
      host_blocks_.push_back(static_cast<char*>(host_staging_alloc(device_, bytes)));
    }
    return host_blocks_.back() + static_cast<size_t>(in_block) * page_bytes_;
  }
  HSA_CHECK(!tiers_.disk_dir.empty(),
            "chunk memory: {} chunks exceed the memory budgets ({} bytes where the model runs, {} bytes of host "
            "memory) and no disk directory was given (--disk-dir)",
            size() + 1, tiers_.device_budget, tiers_.host_budget);
  if (!disk_) disk_ = std::make_unique<ScratchFile>(tiers_.disk_dir, "--disk-dir", kPagesPerSegment * page_bytes_);
  return disk_->at(static_cast<size_t>(disk_pages()) * page_bytes_, page_bytes_);
}

void SpilledPages::append(const Tensor& k, const Tensor& v) {
  HSA_CHECK(k.shape() == page_shape_ && v.shape() == page_shape_ && k.dtype() == dtype_ && v.dtype() == dtype_,
            "SpilledPages::append: expected two {} {} pages, got keys {} {} and values {} {}", shape_str(page_shape_),
            dtype_name(dtype_), shape_str(k.shape()), dtype_name(k.dtype()), shape_str(v.shape()),
            dtype_name(v.dtype()));
  std::lock_guard<std::mutex> lock(mu_);
  char* page = new_page();
  Tensor kc = k.contiguous(), vc = v.contiguous();
  const size_t half = page_bytes_ / 2;
  copy_bytes(page, Device::cpu, kc.raw_data(), kc.device(), half);  // device->host waits for the producer
  copy_bytes(page + half, Device::cpu, vc.raw_data(), vc.device(), half);
  pages_.push_back(page);
}

void SpilledPages::append_copy(const SpilledPages& other, int64_t i) {
  HSA_CHECK(other.page_bytes_ == page_bytes_ && i >= 0 && i < other.size(),
            "SpilledPages::append_copy: page {} of {} ({} bytes each, want {})", i, other.size(), other.page_bytes_,
            page_bytes_);
  std::scoped_lock lock(mu_, other.mu_);
  char* page = new_page();
  std::memcpy(page, other.pages_[i], page_bytes_);
  pages_.push_back(page);
}

void SpilledPages::fetch(const std::vector<Request>& requests, PageGather& gather) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t half = page_bytes_ / 2;
  HSA_CHECK(gather.bytes == half, "SpilledPages::fetch: gathers of {} bytes, pages of {}", gather.bytes, page_bytes_);
  for (const Request& r : requests)
    HSA_CHECK(r.page >= 0 && r.page < size(), "SpilledPages::fetch: page {} of {}", r.page, size());
  auto on_disk = [&](int64_t page) { return page >= host_capacity_; };
  stats_.fetched += static_cast<int64_t>(requests.size());
  const int64_t slots = tiers_.cache_pages;
  if (slots > 0 && !cache_.defined()) {
    Shape shape{slots, 2};
    shape.insert(shape.end(), page_shape_.begin(), page_shape_.end());
    cache_ = Tensor::empty(shape, dtype_, device_);
  }
  // The cache in request order, without copying yet: what each request hits or evicts, and each slot's page
  // before (`before`) and after (cached_) the fetch.
  std::vector<int64_t> before(static_cast<size_t>(slots), -1);
  for (const auto& [page, entry] : cached_) before[static_cast<size_t>(entry.first)] = page;
  for (const Request& r : requests) {
    auto it = slots > 0 ? cached_.find(r.page) : cached_.end();
    if (it != cached_.end()) {
      ++stats_.cache_hits;
      lru_.erase(it->second.second);
      lru_.push_front(r.page);
      it->second.second = lru_.begin();
      continue;
    }
    ++(on_disk(r.page) ? stats_.disk_reads : stats_.host_reads);
    if (slots == 0) continue;
    int64_t slot;
    if (static_cast<int64_t>(cached_.size()) < slots) {
      slot = static_cast<int64_t>(cached_.size());
    } else {  // evict the least recently used page
      int64_t victim = lru_.back();
      lru_.pop_back();
      slot = cached_.at(victim).first;
      cached_.erase(victim);
    }
    lru_.push_front(r.page);
    cached_[r.page] = {slot, lru_.begin()};
  }
  // The copies, with the same bytes as copying in turn. The gather runs its copies at once, so it never reads a slot
  // it writes: a slot that now holds another page is written from that page's tier (from disk by a side copy now,
  // before the gather, which may then read the slot; from host memory by the gather, which then reads that page
  // from host memory). Every other request reads its page's slot if it ended in the cache, else its tier.
  char* cache = slots > 0 ? static_cast<char*>(cache_.raw_data()) : nullptr;
  std::vector<bool> readable(static_cast<size_t>(slots), true);  // the slot holds its page throughout the gather
  for (const auto& [page, entry] : cached_) {
    const int64_t s = entry.first;
    if (before[static_cast<size_t>(s)] == page) continue;
    char* slot = cache + s * page_bytes_;
    if (on_disk(page)) {
      side_copy(device_, slot, true, pages_[page], false, page_bytes_);
    } else {
      readable[static_cast<size_t>(s)] = false;
      gather.add(slot, pages_[page]);
      gather.add(slot + half, pages_[page] + half);
    }
  }
  for (const Request& r : requests) {
    auto it = cached_.find(r.page);
    const char* src = pages_[r.page];
    if (it != cached_.end() && readable[static_cast<size_t>(it->second.first)]) {
      src = cache + it->second.first * page_bytes_;
    } else if (on_disk(r.page)) {  // the mapped file is not memory a kernel can read
      side_copy(device_, r.k_dst, true, src, false, half);
      side_copy(device_, r.v_dst, true, src + half, false, half);
      continue;
    }
    gather.add(r.k_dst, src);
    gather.add(r.v_dst, src + half);
  }
  side_gather(device_, gather);
}

}  // namespace hsa

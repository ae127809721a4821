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

void SpilledPages::fetch(int64_t i, void* k_dst, void* v_dst) {
  std::lock_guard<std::mutex> lock(mu_);
  HSA_CHECK(i >= 0 && i < size(), "SpilledPages::fetch: page {} of {}", i, size());
  const size_t half = page_bytes_ / 2;
  ++stats_.fetched;
  if (tiers_.cache_pages > 0) {
    if (!cache_.defined()) {
      Shape shape{tiers_.cache_pages, 2};
      shape.insert(shape.end(), page_shape_.begin(), page_shape_.end());
      cache_ = Tensor::empty(shape, dtype_, device_);
    }
    auto it = cached_.find(i);
    int64_t slot;
    if (it != cached_.end()) {
      ++stats_.cache_hits;
      slot = it->second.first;
      lru_.erase(it->second.second);
    } else {
      ++(i < host_capacity_ ? stats_.host_reads : stats_.disk_reads);
      if (static_cast<int64_t>(cached_.size()) < tiers_.cache_pages) {
        slot = static_cast<int64_t>(cached_.size());
      } else {  // evict the least recently used page
        int64_t victim = lru_.back();
        lru_.pop_back();
        slot = cached_.at(victim).first;
        cached_.erase(victim);
      }
      char* slot_bytes = static_cast<char*>(cache_.raw_data()) + slot * page_bytes_;
      side_copy(device_, slot_bytes, true, pages_[i], false, page_bytes_);
    }
    lru_.push_front(i);
    cached_[i] = {slot, lru_.begin()};
    const char* src = static_cast<const char*>(cache_.raw_data()) + slot * page_bytes_;
    side_copy(device_, k_dst, true, src, true, half);
    side_copy(device_, v_dst, true, src + half, true, half);
    return;
  }
  ++(i < host_capacity_ ? stats_.host_reads : stats_.disk_reads);
  side_copy(device_, k_dst, true, pages_[i], false, half);
  side_copy(device_, v_dst, true, pages_[i] + half, false, half);
}

}  // namespace hsa

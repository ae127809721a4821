#include <hsa/arena.h>
#include <hsa/error.h>

#include <algorithm>
#include <cstdlib>

namespace hsa {

namespace {
thread_local Arena* current_arena = nullptr;
void free_block(std::byte* p) { std::free(p); }
constexpr size_t kAlign = 64;
}  // namespace

Arena::Arena(size_t block_bytes) : block_bytes_(block_bytes) {}
Arena::~Arena() = default;

void* Arena::allocate(size_t bytes) {
  size_t need = std::max<size_t>((bytes + kAlign - 1) / kAlign * kAlign, kAlign);
  for (Block& block : blocks_) {
    if (block.size - block.offset >= need) {
      void* p = block.memory.get() + block.offset;
      block.offset += need;
      used_ += need;
      peak_ = std::max(peak_, used_);
      return p;
    }
  }
  size_t size = std::max(need, block_bytes_);
  auto* raw = static_cast<std::byte*>(std::aligned_alloc(kAlign, size));
  HSA_CHECK(raw != nullptr, "Arena: out of host memory allocating a block of {} bytes", size);
  blocks_.push_back(Block{std::unique_ptr<std::byte[], void (*)(std::byte*)>(raw, free_block), size, need});
  used_ += need;
  peak_ = std::max(peak_, used_);
  return raw;
}

void Arena::reset() {
  // Merge into one block the size of the peak, so steady-state steps never allocate.
  if (blocks_.size() > 1) {
    size_t total = reserved_bytes();
    blocks_.clear();
    auto* raw = static_cast<std::byte*>(std::aligned_alloc(kAlign, total));
    HSA_CHECK(raw != nullptr, "Arena: out of host memory allocating a block of {} bytes", total);
    blocks_.push_back(Block{std::unique_ptr<std::byte[], void (*)(std::byte*)>(raw, free_block), total, 0});
  }
  for (Block& block : blocks_) block.offset = 0;
  used_ = 0;
}

size_t Arena::reserved_bytes() const {
  size_t total = 0;
  for (const Block& block : blocks_) total += block.size;
  return total;
}

Arena* Arena::current() { return current_arena; }

ArenaScope::ArenaScope(Arena& arena) : previous_(current_arena) { current_arena = &arena; }
ArenaScope::~ArenaScope() { current_arena = previous_; }

}  // namespace hsa

// Arena: bump allocation for activations. Allocations live until reset(); one reset per training step
// or decode step frees every activation at once instead of thousands of malloc/free calls.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

namespace hsa {

class Arena {
 public:
  explicit Arena(size_t block_bytes = size_t(64) << 20);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* allocate(size_t bytes);  // 64-byte aligned
  void reset();                  // every pointer handed out is invalid afterwards
  size_t used_bytes() const { return used_; }
  size_t peak_bytes() const { return peak_; }
  size_t reserved_bytes() const;

  static Arena* current();  // the arena of the innermost ArenaScope on this thread, or null

 private:
  struct Block {
    std::unique_ptr<std::byte[], void (*)(std::byte*)> memory;
    size_t size;
    size_t offset;
  };
  std::vector<Block> blocks_;
  size_t block_bytes_;
  size_t used_ = 0;
  size_t peak_ = 0;
  friend class ArenaScope;
};

// While alive, CPU tensors created on this thread are allocated from the arena.
class ArenaScope {
 public:
  explicit ArenaScope(Arena& arena);
  ~ArenaScope();
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;

 private:
  Arena* previous_;
};

}  // namespace hsa

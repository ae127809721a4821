// ChunkMemory copies share buffers; an append never changes what another copy sees (copy-on-append).
#include "model/chunk_memory.h"

#include <gtest/gtest.h>

using namespace hsa;

namespace {
// One chunk of [B=1, 1, S=2, H=1, D=1] keys/values and a [1, 1, 1, 1] landmark, all filled with `value`.
void append_value(ChunkMemory& m, double value) {
  m.append(Tensor::full({1, 1, 2, 1, 1}, value), Tensor::full({1, 1, 2, 1, 1}, value),
           Tensor::full({1, 1, 1, 1}, value));
}
std::vector<double> keys(const ChunkMemory& m) { return m.mem_k().contiguous().to_vector(); }
}  // namespace

TEST(ChunkMemory, CopiesAndTruncatedCopiesAppendIndependently) {
  ChunkMemory a;
  for (int i = 1; i <= 3; ++i) append_value(a, i);  // capacity 4 after doubling
  ChunkMemory b = a, c = a;
  c.truncate(1);
  append_value(a, 4);  // a owns the tail: writes in place
  append_value(b, 40);  // b's tail was taken by a: moves to its own buffer
  append_value(c, 20);  // c was cut back: must not overwrite chunk 2 that a and b hold
  EXPECT_EQ(keys(a), (std::vector<double>{1, 1, 2, 2, 3, 3, 4, 4}));
  EXPECT_EQ(keys(b), (std::vector<double>{1, 1, 2, 2, 3, 3, 40, 40}));
  EXPECT_EQ(keys(c), (std::vector<double>{1, 1, 20, 20}));
  EXPECT_EQ(c.num_chunks(), 2);
  EXPECT_THROW(c.truncate(3), Error);
}

TEST(ChunkMemory, AdoptedBuffersGrowOnAppend) {
  ChunkMemory m = ChunkMemory::adopt(Tensor::full({1, 2, 2, 1, 1}, 7), Tensor::full({1, 2, 2, 1, 1}, 7),
                                     Tensor::full({1, 2, 1, 1}, 7));
  append_value(m, 8);
  EXPECT_EQ(keys(m), (std::vector<double>{7, 7, 7, 7, 8, 8}));
}

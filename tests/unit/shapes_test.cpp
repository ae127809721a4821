// The one chunk-visibility rule (kernel/shapes.h), against its definition checked chunk by chunk: chunk c is visible
// from position pos when it is complete, (c+1)*S <= pos; when W > 0, when it does not lie wholly inside the SWA
// window, c*S <= pos - W; and when it exists, c < C. The visible chunks must be a prefix [0, n).
#include "kernel/shapes.h"

#include <gtest/gtest.h>

using namespace hsa;

namespace {

bool visible_by_definition(int64_t c, int64_t pos, int64_t S, int64_t W, int64_t C) {
  if (c >= C || (c + 1) * S > pos) return false;
  return W == 0 || c * S <= pos - W;
}

}  // namespace

TEST(VisibleChunks, IsThePrefixOfChunksVisibleByDefinition) {
  for (int64_t S : {1, 3, 4, 8})
    for (int64_t W : {0, 1, 5, 8, 13})
      for (int64_t C : {0, 1, 4, 100})
        for (int64_t pos = 0; pos < 60; ++pos) {
          SCOPED_TRACE(::testing::Message() << "S=" << S << " W=" << W << " C=" << C << " pos=" << pos);
          const int64_t n = visible_chunks(pos, S, W, C);
          ASSERT_GE(n, 0);
          for (int64_t c = 0; c < C + 2; ++c) EXPECT_EQ(visible_by_definition(c, pos, S, W, C), c < n) << "c=" << c;
        }
}

TEST(VisibleChunks, RetrievalDimsOverloadReadsChunkSizeWindowAndChunks) {
  RetrievalDims d;
  d.chunk_size = 64;
  d.window = 128;
  d.chunks = 10;
  // pos 1000: 15 complete chunks; outside the window (c*64 <= 872): c <= 13, so 14; 10 exist.
  EXPECT_EQ(visible_chunks(1000, d), 10);
  d.chunks = 100;
  EXPECT_EQ(visible_chunks(1000, d), 14);
  d.window = 0;
  EXPECT_EQ(visible_chunks(1000, d), 15);
  EXPECT_EQ(visible_chunks(63, d), 0);  // the first chunk completes at position 64
  EXPECT_EQ(visible_chunks(64, d), 1);
}

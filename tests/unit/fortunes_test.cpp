#include "text/fortunes.h"

#include <gtest/gtest.h>

using hsa::data::split_fortunes;

TEST(SplitFortunes, SplitsAtPercentLinesAndKeepsLineBreaks) {
  const std::string file =
      "A first saying.\n"
      "\t\t-- Someone\n"
      "%\n"
      "Roses are red,\r\n"
      "  violets are blue.\r\n"
      "%\n"
      "%\n"
      "   \n"
      "%\n"
      "\n"
      "Last one, no final separator.\n"
      "\n";
  const std::vector<std::string> f = split_fortunes(file);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0], "A first saying.\n\t\t-- Someone");
  EXPECT_EQ(f[1], "Roses are red,\n  violets are blue.");
  EXPECT_EQ(f[2], "Last one, no final separator.");
}

TEST(SplitFortunes, PercentInsideALineIsText) {
  const std::vector<std::string> f = split_fortunes("100% sure.\n% not a separator\n%\n");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0], "100% sure.\n% not a separator");
  EXPECT_TRUE(split_fortunes("").empty());
  EXPECT_TRUE(split_fortunes("%\n%\n").empty());
}

#include "text/prose.h"

#include <gtest/gtest.h>

using hsa::data::ascii_line;
using hsa::data::is_prose;
using hsa::data::ProseRule;

TEST(AsciiLine, MapsTypographicUtf8AndCollapsesWhitespace) {
  EXPECT_EQ(ascii_line("  \xE2\x80\x9CIt\xE2\x80\x99s\xE2\x80\x9D \t said\xC2\xA0she \xE2\x80\x94 twice\xE2\x80\xA6  "),
            "\"It's\" said she - twice...");
  EXPECT_EQ(ascii_line("Heading\xC2\xB6"), "Heading");
  EXPECT_EQ(ascii_line("plain"), "plain");
  EXPECT_EQ(ascii_line("   "), "");
}

TEST(AsciiLine, RejectsOtherNonAsciiInvalidUtf8AndControls) {
  EXPECT_FALSE(ascii_line("na\xC3\xAFve"));          // U+00EF: no ASCII form given
  EXPECT_FALSE(ascii_line("arrow \xE2\x86\x92 here"));  // U+2192
  EXPECT_FALSE(ascii_line("bad \xC3 byte"));          // truncated sequence
  EXPECT_FALSE(ascii_line("overlong \xC0\xAF"));      // overlong '/'
  EXPECT_FALSE(ascii_line("under_\x08_line"));        // backspace overstrike
}

TEST(IsProse, RejectsCodeListingsAndArt) {
  const ProseRule any{};
  EXPECT_TRUE(is_prose("The quick brown fox jumps over the lazy dog.", any));
  EXPECT_FALSE(is_prose("for (int i = 0; i < n; ++i) { a[i] = b[i]; }", any));
  EXPECT_FALSE(is_prose("x = {'a': [1, 2], 'b': {3: 4}}", any));
  EXPECT_FALSE(is_prose("||  /\\_/\\  ||  ( o.o )  ||", any));
  EXPECT_FALSE(is_prose("1.2.3 4.5.6 7.8.9 10 11", any));  // mostly digits
  EXPECT_FALSE(is_prose("", any));
}

TEST(IsProse, WordCountAndSentenceEnd) {
  const ProseRule paragraphs{.min_words = 6, .sentence_end = true};
  EXPECT_TRUE(is_prose("This sentence has more than six words.", paragraphs));
  EXPECT_TRUE(is_prose("He said it was fine (more or less.)", paragraphs));
  EXPECT_TRUE(is_prose("The following options are recognised by the tool:", paragraphs));
  EXPECT_FALSE(is_prose("Too short a line.", paragraphs));
  EXPECT_FALSE(is_prose("2.1.3 Life with eternal upgrades and more words", paragraphs));  // heading: no end
  EXPECT_TRUE(is_prose("Too short a line.", ProseRule{.min_words = 1}));
  EXPECT_TRUE(is_prose("-- Mark Twain", ProseRule{.min_words = 1}));
}

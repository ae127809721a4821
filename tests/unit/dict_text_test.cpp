#include "text/dict_text.h"

#include <gtest/gtest.h>

using namespace hsa::data;

TEST(DictdEntries, DecodesBase64OffsetsSkipsMetadataAndSharedOffsets) {
  const std::string dict = "metaAlpha text\nBeta text\n";
  // offset 4 = "E", length 11 = "L"; offset 15 = "P", length 10 = "K"; base64 digits A=0 .. / = 63.
  const std::string index =
      "00-database-info\tA\tE\n"
      "alpha\tE\tL\n"
      "alpha2\tE\tL\n"
      "beta\tP\tK\n"
      "broken\tE\n"
      "outside\tBA\tBA\n";
  const std::vector<DictEntry> entries = dictd_entries(index, dict);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].headword, "alpha");
  EXPECT_EQ(entries[0].text, "Alpha text\n");
  EXPECT_EQ(entries[1].headword, "beta");
  EXPECT_EQ(entries[1].text, "Beta text\n");
}

TEST(DictEntryText, ReflowsParagraphsAndDropsPronunciationsBracesAndAttributions) {
  const std::string entry =
      "Abandon \\A*ban\"don\\, v. t. [imp. & p. p. {Abandoned}]\n"
      "   1. To give up wholly; to\n"
      "      relinquish.\n"
      "      [1913 Webster]\n"
      "\n"
      "   <programming> A {recursive} sense.\n"
      "\n"
      "   [\"A cited book\",\n"
      "   1988].\n";
  EXPECT_EQ(dict_entry_text(entry),
            "Abandon, v. t. [imp. & p. p. Abandoned] 1. To give up wholly; to relinquish.\n"
            "(programming) A recursive sense.\n");
}

TEST(WordnetSynset, WordsPartOfSpeechAndGloss) {
  const auto s = wordnet_synset(
      "00022686 29 v 02 stimulate 0 perk_up 1 001 @ 00019448 v 0000 01 + 09 00 | cause to be alert; \"Coffee "
      "stimulates\"  ");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->lexfile, 29);
  EXPECT_EQ(s->words, "stimulate, perk up");
  EXPECT_EQ(s->text, "stimulate, perk up (verb): cause to be alert; \"Coffee stimulates\"");
  const auto adj = wordnet_synset("00001740 00 s 01 galore(ip) 0 000 | in great numbers");
  ASSERT_TRUE(adj.has_value());
  EXPECT_EQ(adj->text, "galore (adjective): in great numbers");
  EXPECT_FALSE(wordnet_synset("  1 This software and database is being provided").has_value());
  EXPECT_FALSE(wordnet_synset("00001740 00 n 03 only_one 0 000 | too few words").has_value());
}

#include "text/tokenizer.h"

#include <hsa/error.h>

#include <gtest/gtest.h>

using namespace hsa;

TEST(ByteTokenizer, RoundTripsAllBytes) {
  ByteTokenizer tok;
  EXPECT_EQ(tok.vocab_size(), 260);
  std::string text;
  for (int b = 0; b < 256; ++b) text.push_back(static_cast<char>(b));
  text += "héllo\n";
  std::vector<int32_t> ids = tok.encode(text);
  ASSERT_EQ(ids.size(), text.size());
  for (int b = 0; b < 256; ++b) EXPECT_EQ(ids[b], b);
  EXPECT_EQ(tok.decode(ids), text);
}

TEST(ByteTokenizer, BosAndSpecialsRender) {
  ByteTokenizer tok;
  std::vector<int32_t> ids = tok.encode("ab", /*add_bos=*/true);
  EXPECT_EQ(ids, (std::vector<int32_t>{ByteTokenizer::kBos, 'a', 'b'}));
  ids.push_back(ByteTokenizer::kSep);
  ids.push_back(ByteTokenizer::kPad);
  ids.push_back(ByteTokenizer::kEos);
  EXPECT_EQ(tok.decode(ids), "<bos>ab<sep><pad><eos>");
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(ByteTokenizer, OutOfVocabularyIdsAreErrors) {
  ByteTokenizer tok;
  std::vector<int32_t> bad = {'a', 260};
  try {
    tok.decode(bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("260"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("position 1"), std::string::npos) << e.what();
  }
  std::vector<int32_t> negative = {-1};
  EXPECT_THROW(tok.decode(negative), Error);
}

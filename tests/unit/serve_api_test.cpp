// The server's request parsing and validation, UTF-8 holdback and prefix cache, without HTTP.
#include "serve/openai_api.h"
#include "serve/prefix_cache.h"

#include <gtest/gtest.h>

using namespace hsa;

namespace {

ApiError error_of(const std::string& body, bool chat = false) {
  ByteTokenizer tok;
  try {
    parse_generation_request(body, chat, tok, "m", ApiLimits{100, 16, 8});
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return {};
}

std::shared_ptr<const SavedState> saved(std::vector<int32_t> tokens, std::vector<int64_t> windows = {}) {
  auto s = std::make_shared<SavedState>();
  s->tokens = std::move(tokens);
  s->state.position = static_cast<int64_t>(s->tokens.size());
  s->logits = Tensor::zeros({4});
  for (int64_t w : windows) s->windows[w] = {};
  return s;
}

}  // namespace

TEST(ServeApi, ParsesCompletionsAndChat) {
  ByteTokenizer tok;
  ApiLimits limits{100, 16, 8};
  ParsedRequest r = parse_generation_request(
      R"({"model": "m", "prompt": "ab", "max_tokens": 3, "temperature": 0.5, "top_p": 0.9, "seed": 4, "stop": ["x", "yz"], "stream": true})",
      false, tok, "m", limits);
  EXPECT_EQ(r.generation.prompt, (std::vector<int32_t>{ByteTokenizer::kBos, 'a', 'b'}));
  EXPECT_EQ(r.generation.max_tokens, 3);
  EXPECT_EQ(r.generation.sampling.temperature, 0.5);
  EXPECT_EQ(r.generation.stop.size(), 2u);
  EXPECT_TRUE(r.stream);
  EXPECT_EQ(parse_generation_request(R"({"prompt": [1, 2]})", false, tok, "m", limits).generation.prompt.size(), 2u);
  EXPECT_EQ(parse_generation_request(R"({"prompt": "a"})", false, tok, "m", limits).generation.max_tokens, 8);
  ParsedRequest chat = parse_generation_request(R"({"messages": [{"role": "user", "content": "hi"}]})", true, tok,
                                                "m", limits);
  EXPECT_EQ(tok.decode(chat.generation.prompt), "<bos>user: hi\nassistant:");
}

TEST(ServeApi, RefusesBadRequestsWithTheParameter) {
  EXPECT_EQ(error_of("{oops").code, "invalid_json");
  EXPECT_EQ(error_of("{\"prompt\": \"\xff\"}").code, "invalid_utf8");
  EXPECT_EQ(error_of(R"({"prompt": "a", "max_tokens": "3"})").param, "max_tokens");
  EXPECT_EQ(error_of(R"({"prompt": "a", "max_tokens": 17})").param, "max_tokens");
  EXPECT_EQ(error_of(R"({"prompt": "a", "n": 2})").param, "n");
  EXPECT_EQ(error_of(R"({"prompt": "a", "top_p": 0})").param, "top_p");
  EXPECT_EQ(error_of(R"({"prompt": "a", "stop": [1]})").param, "stop");
  EXPECT_EQ(error_of(R"({"model": "other", "prompt": "a"})").status, 404);
  ApiError too_long = error_of(R"({"prompt": ")" + std::string(120, 'a') + "\"}");
  EXPECT_EQ(too_long.code, "context_length_exceeded");
  EXPECT_NE(too_long.message.find("121 tokens"), std::string::npos) << too_long.message;
  EXPECT_EQ(error_of(R"({"prompt": ")" + std::string(90, 'a') + R"(", "max_tokens": 16})").param, "max_tokens");
  EXPECT_EQ(error_of(R"({"messages": [{"role": "user"}]})", true).param, "messages");
  nlohmann::json body = error_of("[]").body();
  for (const char* k : {"message", "type", "param", "code"}) EXPECT_TRUE(body["error"].contains(k)) << k;
}

TEST(ServeApi, Utf8HoldbackKeepsWholeCharacters) {
  EXPECT_EQ(complete_utf8_prefix("ab"), 2u);
  EXPECT_EQ(complete_utf8_prefix("a\xc3"), 1u);          // first byte of é
  EXPECT_EQ(complete_utf8_prefix("a\xc3\xa9"), 3u);      // é complete
  EXPECT_EQ(complete_utf8_prefix("a\xe2\x82"), 1u);      // two of three bytes of €
  EXPECT_EQ(complete_utf8_prefix("\xf0\x9f\x98\x80"), 4u);
}

TEST(PrefixCache, FindsTheLongestResumablePrefix) {
  PrefixCache cache(1 << 20);
  cache.insert(saved({1, 2, 3, 4, 5, 6}, {4}));
  cache.insert(saved({9, 9}));
  // Whole state inside the prompt: resume at its end.
  EXPECT_EQ(cache.find(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7}).position, 6);
  // Same prompt: its logits answer without a prefill.
  EXPECT_EQ(cache.find(std::vector<int32_t>{1, 2, 3, 4, 5, 6}).position, 6);
  // Diverges at 5: back to the window snapshot at 4.
  EXPECT_EQ(cache.find(std::vector<int32_t>{1, 2, 3, 4, 5, 8}).position, 4);
  EXPECT_EQ(cache.find(std::vector<int32_t>{1, 2, 3}).position, 0);
  EXPECT_FALSE(cache.find(std::vector<int32_t>{7}).state);
  // A state that extends one and can resume where it ended replaces it.
  cache.insert(saved({9, 9, 1, 2}, {2}));
  EXPECT_EQ(cache.size(), 2u);
}

TEST(PrefixCache, EvictsLeastRecentlyUsedOverBudget) {
  size_t one = saved({1, 2})->bytes();
  PrefixCache cache(2 * one + one / 2);
  cache.insert(saved({1, 2}));
  cache.insert(saved({3, 4}));
  cache.find(std::vector<int32_t>{1, 2, 5});  // {1, 2} becomes the most recent
  cache.insert(saved({5, 6}));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_TRUE(cache.find(std::vector<int32_t>{1, 2, 7}).state);
  EXPECT_FALSE(cache.find(std::vector<int32_t>{3, 4, 7}).state);
}

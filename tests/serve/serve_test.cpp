// `hsa serve` end to end: the built binary on a free loopback port with models/passkey-tiny on the CPU, driven
// over HTTP by cpp-httplib's client. One server for the whole file (one ctest), ending with SIGTERM.
#include <httplib.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>

#include <fcntl.h>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kKey = "test-key";

struct ServerProcess {
  pid_t pid = -1;
  int port = 0;
  fs::path dir, log;
};
ServerProcess server;

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

httplib::Client client(bool with_key = true) {
  httplib::Client c("127.0.0.1", server.port);
  c.set_read_timeout(60, 0);
  if (with_key) c.set_default_headers({{"Authorization", std::string("Bearer ") + kKey}});
  return c;
}

json post(const std::string& path, const json& body, int expected_status = 200) {
  auto res = client().Post(path.c_str(), body.dump(), "application/json");
  EXPECT_TRUE(res) << path;
  if (!res) return json();
  EXPECT_EQ(res->status, expected_status) << path << ": " << res->body;
  return json::parse(res->body);
}

// A prompt of about `n` bytes (= tokens) of filler, then a pass key and the question.
std::string passkey_prompt(size_t n, const std::string& key, const std::string& filler_seed = "a") {
  std::string text;
  const char* words[] = {"The grass is green. ", "The sky is blue. ", "The sun is yellow. ", "Here we go. "};
  for (size_t i = 0; text.size() < n; ++i) text += words[(i * 7 + filler_seed[0]) % 4];
  return text + "The pass key is " + key + ". Remember it. " + key + " is the pass key. What is the pass key? The pass key is";
}

// The data payloads of an SSE body, and whether it carried keep-alive comments.
std::vector<std::string> sse_events(const std::string& body, bool* keepalive = nullptr) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string event = body.substr(pos, end - pos);
    if (event.rfind("data: ", 0) == 0) out.push_back(event.substr(6));
    if (event.rfind(": keep-alive", 0) == 0 && keepalive) *keepalive = true;
    pos = end + 2;
  }
  return out;
}

void expect_error_object(const std::string& body, const std::string& what) {
  json j = json::parse(body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << what << ": " << body;
  ASSERT_TRUE(j.contains("error")) << what;
  for (const char* k : {"message", "type", "param", "code"}) EXPECT_TRUE(j["error"].contains(k)) << what << " " << k;
  EXPECT_TRUE(j["error"]["message"].is_string());
}

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server.dir = fs::temp_directory_path() / ("hsa_serve_test_" + std::to_string(::getpid()));
    fs::remove_all(server.dir);
    fs::create_directories(server.dir / "slots");
    server.log = server.dir / "server.log";
    std::string model = std::string(HSA_SOURCE_DIR) + "/models/passkey-tiny";
    std::string slots = (server.dir / "slots").string();
    std::vector<std::string> args = {HSA_CLI_PATH, "serve", "-m", model, "--port", "0", "--parallel", "2",
                                     "--queue", "8", "--api-key", kKey, "--keepalive", "0.01", "--segment", "512",
                                     "--snapshot-interval", "512", "--max-prompt-tokens", "3000",
                                     "--max-tokens-limit", "64", "--max-body-bytes", "1000000", "--timeout", "60",
                                     "--slot-save-path", slots, "--shutdown-grace", "20"};
    server.pid = ::fork();
    if (server.pid == 0) {
      int fd = ::open(server.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 2);
      ::dup2(fd, 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    std::regex listening("listening on http://127\\.0\\.0\\.1:(\\d+)");
    for (int i = 0; i < 600 && server.port == 0; ++i) {
      std::smatch m;
      std::string log = read_text(server.log);
      if (std::regex_search(log, m, listening)) server.port = std::stoi(m[1]);
      else std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_GT(server.port, 0) << read_text(server.log);
    for (int i = 0; i < 600; ++i) {
      auto res = client(false).Get("/health");
      if (res && res->status == 200) return;
      if (res) EXPECT_EQ(res->status, 503);  // loading
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "server did not become healthy: " << read_text(server.log);
  }
  static void TearDownTestSuite() {
    if (server.pid > 0) {
      ::kill(server.pid, SIGKILL);
      ::waitpid(server.pid, nullptr, 0);
    }
    fs::remove_all(server.dir);
  }
};

TEST_F(Serve, HealthIsOpenEverythingElseNeedsTheKey) {
  auto health = client(false).Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto no_key = client(false).Get("/v1/models");
  ASSERT_TRUE(no_key);
  EXPECT_EQ(no_key->status, 401);
  expect_error_object(no_key->body, "no key");
  httplib::Client wrong("127.0.0.1", server.port);
  auto bad = wrong.Post("/v1/completions", httplib::Headers{{"Authorization", "Bearer nope"}}, "{}", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  auto models = client().Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "passkey-tiny");
}

TEST_F(Serve, CompletionChatTokenize) {
  json r = post("/v1/completions", {{"model", "passkey-tiny"}, {"prompt", passkey_prompt(0, "12345")}, {"max_tokens", 5}});
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["choices"][0]["text"].get<std::string>().substr(0, 5), "12345");
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["completion_tokens"], 5);
  EXPECT_EQ(r["usage"]["prompt_tokens"], passkey_prompt(0, "12345").size() + 1);  // <bos>
  json stop = post("/v1/completions", {{"prompt", passkey_prompt(0, "12345")}, {"max_tokens", 8}, {"stop", "34"}});
  EXPECT_EQ(stop["choices"][0]["text"], "12");
  EXPECT_EQ(stop["choices"][0]["finish_reason"], "stop");
  json chat = post("/v1/chat/completions",
                   {{"messages", {{{"role", "user"}, {"content", "The pass key is 777. What is it?"}}}},
                    {"max_tokens", 4}, {"temperature", 0.7}, {"seed", 3}});
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(chat["choices"][0]["message"]["content"].is_string());
  json tok = post("/tokenize", {{"content", "héllo"}});
  EXPECT_EQ(tok["tokens"].size(), 6u);
  EXPECT_EQ(post("/detokenize", {{"tokens", tok["tokens"]}})["content"], "héllo");
}

TEST_F(Serve, StreamingCachedPrefixAndUncachedAgree) {
  std::string prompt = passkey_prompt(1100, "4242");
  // Streamed, uncached: progress events while the prompt is read, keep-alives while a segment runs.
  auto res = client().Post("/v1/completions",
                           json{{"prompt", prompt}, {"max_tokens", 6}, {"stream", true}, {"cache_prompt", false}}.dump(),
                           "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  bool keepalive = false;
  std::vector<std::string> events = sse_events(res->body, &keepalive);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_TRUE(keepalive);
  std::string streamed;
  int64_t progress_max = 0;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json e = json::parse(events[i]);
    if (e.contains("prefill_progress")) progress_max = std::max<int64_t>(progress_max, e["prefill_progress"]["processed"]);
    else streamed += e["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(progress_max, static_cast<int64_t>(prompt.size()) + 1);
  json last = json::parse(events[events.size() - 2]);
  EXPECT_EQ(last["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  // The same prompt again: its state is cached whole.
  json again = post("/v1/completions", {{"prompt", prompt}, {"max_tokens", 6}});
  EXPECT_EQ(again["choices"][0]["text"], streamed);
  EXPECT_EQ(again["usage"]["prompt_tokens_details"]["cached_tokens"], prompt.size() + 1);
  // A prompt sharing the first 1000 tokens resumes from the last snapshot before them (512) and answers as an
  // uncached run does.
  std::string other = prompt.substr(0, 1000) + " The pass key is 999. Remember it. What is the pass key? The pass key is";
  json uncached = post("/v1/completions", {{"prompt", other}, {"max_tokens", 6}, {"cache_prompt", false}});
  EXPECT_EQ(uncached["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  json cached = post("/v1/completions", {{"prompt", "x" + other.substr(1)}, {"max_tokens", 6}});  // new prefix: no hit
  EXPECT_EQ(cached["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  // Evict nothing relevant: the original prompt's state still holds the snapshot at 512.
  json resumed = post("/v1/completions", {{"prompt", other}, {"max_tokens", 6}});
  EXPECT_GT(resumed["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>(), 0);
  EXPECT_EQ(resumed["choices"][0]["text"], uncached["choices"][0]["text"]);
}

// A streamed response sends the tokens generated within one flush interval (--stream-flush-ms, 10 ms by default)
// as one chunk, not a chunk per token, and its text is the non-streamed response's.
TEST_F(Serve, StreamedTokensGoTogetherWithinAFlushInterval) {
  const std::string prompt = passkey_prompt(200, "8080");
  auto res = client().Post("/v1/completions",
                           json{{"prompt", prompt}, {"max_tokens", 64}, {"stream", true}}.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  std::vector<std::string> events = sse_events(res->body, nullptr);
  ASSERT_GE(events.size(), 2u);
  std::string streamed;
  int64_t text_events = 0, tokens = 0;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json e = json::parse(events[i]);
    if (e.contains("prefill_progress")) continue;
    std::string piece = e["choices"][0]["text"].get<std::string>();
    text_events += !piece.empty();
    streamed += piece;
    if (e.contains("usage") && !e["usage"].is_null()) tokens = e["usage"]["completion_tokens"];
  }
  ASSERT_GE(tokens, 40) << "the model stopped early";
  EXPECT_LE(text_events, tokens * 3 / 4) << "a chunk per token";
  EXPECT_EQ(streamed, post("/v1/completions", {{"prompt", prompt}, {"max_tokens", 64}})["choices"][0]["text"]);
}

TEST_F(Serve, BadRequestsGetErrorObjects) {
  struct Case {
    std::string what, body;
    int status;
    std::string param;
  };
  std::string long_prompt(3100, 'a');
  std::vector<Case> cases = {
      {"malformed JSON", "{\"prompt\": ", 400, ""},
      {"not an object", "[1, 2]", 400, ""},
      {"wrong type", R"({"prompt": "hi", "max_tokens": "5"})", 400, "max_tokens"},
      {"wrong prompt type", R"({"prompt": {"a": 1}})", 400, "prompt"},
      {"unknown model", R"({"model": "gpt-9", "prompt": "hi"})", 404, "model"},
      {"prompt too long", json{{"prompt", long_prompt}}.dump(), 400, "prompt"},
      {"max_tokens zero", R"({"prompt": "hi", "max_tokens": 0})", 400, "max_tokens"},
      {"max_tokens too large", R"({"prompt": "hi", "max_tokens": 100000})", 400, "max_tokens"},
      {"n > 1", R"({"prompt": "hi", "n": 2})", 400, "n"},
      {"temperature", R"({"prompt": "hi", "temperature": -1})", 400, "temperature"},
      {"non-UTF-8", "{\"prompt\": \"\xff\xfe\"}", 400, ""},
      {"bad token id", R"({"prompt": [1, 2, 99999]})", 400, "prompt"},
      {"no messages", R"({"messages": []})", 400, "messages"},
  };
  for (const Case& c : cases) {
    std::string path = c.what == "no messages" ? "/v1/chat/completions" : "/v1/completions";
    auto res = client().Post(path.c_str(), c.body, "application/json");
    ASSERT_TRUE(res) << c.what;
    EXPECT_EQ(res->status, c.status) << c.what << ": " << res->body;
    expect_error_object(res->body, c.what);
    if (!c.param.empty()) EXPECT_EQ(json::parse(res->body)["error"]["param"], c.param) << c.what;
    if (c.what == "prompt too long") EXPECT_NE(res->body.find("3101 tokens"), std::string::npos) << res->body;
  }
  auto huge = client().Post("/v1/completions", std::string(2000000, ' '), "application/json");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413);
  expect_error_object(huge->body, "too large");
  auto missing = client().Get("/v2/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  expect_error_object(missing->body, "404");
  EXPECT_EQ(client(false).Get("/health")->status, 200);  // still up
}

TEST_F(Serve, SlotsSaveAndRestore) {
  post("/v1/completions", {{"prompt", "slot test"}, {"max_tokens", 2}});
  // Whichever slot ran it, one of the two holds a state.
  json saved;
  for (int slot = 0; slot < 2 && saved.is_null(); ++slot) {
    auto res = client().Post(("/slots/" + std::to_string(slot) + "?action=save").c_str(),
                             json{{"filename", "s.state"}}.dump(), "application/json");
    ASSERT_TRUE(res);
    if (res->status == 200) saved = json::parse(res->body);
  }
  ASSERT_FALSE(saved.is_null());
  EXPECT_GT(saved["n_saved"].get<int64_t>(), 0);
  EXPECT_TRUE(fs::exists(server.dir / "slots" / "s.state"));
  json restored = post("/slots/1?action=restore", {{"filename", "s.state"}});
  EXPECT_EQ(restored["n_restored"], saved["n_saved"]);
  for (const char* name : {"../s.state", "a/b", ".."}) {
    auto res = client().Post("/slots/0?action=save", json{{"filename", name}}.dump(), "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << name;
    expect_error_object(res->body, name);
  }
  post("/slots/0?action=restore", {{"filename", "missing.state"}}, 404);
}

TEST_F(Serve, ClientDisconnectCancelsTheRequest) {
  httplib::Client c = client();
  size_t chunks = 0;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.set_header("Content-Type", "application/json");
  req.body = json{{"prompt", passkey_prompt(1600, "5555", "b")}, {"max_tokens", 64}, {"stream", true},
                  {"cache_prompt", false}}
                 .dump();
  // Read the first event, then hang up.
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 2; };
  auto res = c.send(req);
  EXPECT_FALSE(res);
  bool cancelled = false;
  for (int i = 0; i < 200 && !cancelled; ++i) {
    auto m = client().Get("/metrics");
    ASSERT_TRUE(m);
    cancelled = m->body.find("hsa_requests_cancelled_total 0\n") == std::string::npos;
    if (!cancelled) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(client(false).Get("/health")->status, 200);
}

// Last (gtest runs a file's tests in order): SIGTERM lets the running request finish, then the server exits 0.
TEST_F(Serve, SigtermFinishesInFlightRequestsThenExitsZero) {
  std::atomic<bool> started{false};
  std::string body;
  std::thread request([&] {
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.set_header("Content-Type", "application/json");
    req.set_header("Authorization", std::string("Bearer ") + kKey);
    req.body = json{{"prompt", passkey_prompt(2500, "31337", "c")}, {"max_tokens", 32}, {"stream", true},
                    {"cache_prompt", false}}
                   .dump();
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      body.append(data, n);
      started = true;
      return true;
    };
    httplib::Client c("127.0.0.1", server.port);
    c.set_read_timeout(60, 0);
    EXPECT_TRUE(c.send(req));
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ::kill(server.pid, SIGTERM);
  request.join();
  std::vector<std::string> events = sse_events(body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "length") << body;
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 400 && done == 0; ++i) {
    done = ::waitpid(server.pid, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(done, server.pid) << read_text(server.log);
  server.pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_text(server.log);
}

}  // namespace

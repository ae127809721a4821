// hsa serve: an OpenAI-compatible HTTP server (POST /v1/completions, /v1/chat/completions, GET /v1/models,
// /health, /metrics, POST /tokenize, /detokenize, /slots/{id}) over the engine in src/serve/. Built only where
// cpp-httplib is found (HSA_WITH_HTTPLIB); see docs/serve.md.
#include "cli/command.h"
#include "cli/placement_options.h"

#ifdef HSA_WITH_HTTPLIB
#include "model/memory_plan.h"
#include "model/placement.h"
#include "serve/engine.h"
#include "serve/openai_api.h"
#include "train/trainer.h"
#include "util/file_util.h"
#include "util/progress.h"

#include <httplib.h>

#include <fmt/format.h>

#include <csignal>
#include <filesystem>
#include <future>
#include <pthread.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/socket.h>
#endif

namespace {

struct ServeOptions {
  std::string model, device = "cpu", dtype, host = "127.0.0.1", alias;
  int port = 8080;
  int parallel = 1, queue = 64;
  std::string api_key, api_key_file, slot_save_path;
  size_t cache_bytes = size_t(1) << 30;
  size_t max_body_bytes = size_t(64) << 20;
  double timeout_s = 600, keepalive_s = 10, shutdown_grace_s = 10, stream_flush_ms = 10;
  int64_t segment = 1024, snapshot_interval = 4096, max_tokens = 4096, max_prompt_tokens = 0;
};

#ifdef HSA_WITH_HTTPLIB
using nlohmann::json;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(hsa::dump_json(body), "application/json");
}
void send_error(httplib::Response& res, const hsa::ApiError& e) { send_json(res, e.status, e.body()); }
hsa::ApiError server_error(const std::string& message) { return {500, message, "server_error", "", ""}; }

// Everything the handlers share; `engine` is set once the model has loaded.
struct Server {
  const ServeOptions& o;
  std::atomic<bool> ready{false};
  std::unique_ptr<hsa::Checkpoint> checkpoint;
  std::unique_ptr<hsa::Model> model;
  std::unique_ptr<hsa::Tokenizer> tokenizer;
  std::unique_ptr<hsa::Engine> engine;
  hsa::ApiLimits limits;
  std::string model_id, api_key;
  std::atomic<int64_t> next_id{1};
  int64_t started = std::time(nullptr);
};

// Positions one request may hold: the memory plan's (the one `hsa generate` refuses beyond), after the weights and
// the state cache, shared by the slots; capped by --max-prompt-tokens.
int64_t plan_max_positions(const hsa::Checkpoint& ck, const hsa::Placement& place, const ServeOptions& o) {
  hsa::MemoryPlan plan = hsa::plan_memory(ck, place);
  int64_t positions = plan.max_positions(double(o.cache_bytes), o.parallel);
  HSA_CHECK(positions > 0, "serve: the weights ({:.0f} MiB) and --state-cache-bytes ({:.0f} MiB) leave no memory",
            plan.weight_bytes / 1048576.0, double(o.cache_bytes) / 1048576.0);
  return o.max_prompt_tokens > 0 ? std::min(positions, o.max_prompt_tokens) : positions;
}

std::string metrics_text(Server& s) {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out += fmt::format("# HELP hsa_{} {}\n# TYPE hsa_{} {}\nhsa_{} {}\n", name, help, name, type, name, value);
  };
  if (!s.engine) return out;
  const hsa::EngineMetrics& m = s.engine->metrics();
  metric("requests_total", "counter", "generation requests accepted", double(m.requests));
  metric("requests_finished_total", "counter", "generation requests finished", double(m.finished));
  metric("requests_rejected_total", "counter", "requests refused because the queue was full", double(m.rejected));
  metric("requests_cancelled_total", "counter", "requests cancelled (client gone)", double(m.cancelled));
  metric("requests_timeout_total", "counter", "requests past --timeout", double(m.timeouts));
  metric("prompt_tokens_total", "counter", "prompt tokens, cached ones included", double(m.prompt_tokens));
  metric("cached_prompt_tokens_total", "counter", "prompt tokens resumed from the state cache",
         double(m.cached_tokens));
  metric("prefill_tokens_total", "counter", "prompt tokens computed", double(m.prefill_tokens));
  metric("generated_tokens_total", "counter", "tokens generated", double(m.generated_tokens));
  metric("cache_hits_total", "counter", "requests that resumed from a cached state", double(m.cache_hits));
  metric("prefill_tokens_per_second", "gauge", "prompt tokens computed per second of prefill",
         double(m.prefill_tokens) / std::max(1e-9, double(m.prefill_us) / 1e6));
  metric("decode_tokens_per_second", "gauge", "tokens generated per second of decoding",
         double(m.generated_tokens) / std::max(1e-9, double(m.decode_us) / 1e6));
  metric("queue_length", "gauge", "requests waiting for a slot", double(s.engine->queue_length()));
  metric("busy_slots", "gauge", "slots running a request", double(s.engine->busy_slots()));
  metric("state_cache_bytes", "gauge", "bytes held by cached states", double(s.engine->cache().bytes()));
  metric("state_cache_entries", "gauge", "cached states", double(s.engine->cache().size()));
  return out;
}

// Events of one streamed response, from the slot thread to the connection's thread. Text is queued raw and
// formatted by the connection's thread, pieces that arrived together in one chunk: the slot thread spends no JSON
// work per token, and a reader that falls behind gets fewer, larger chunks instead of a write per token.
struct EventQueue {
  struct Event {
    bool text;         // raw generated text (else a formatted event)
    std::string data;
  };
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<Event> events;
  bool finished = false;
  void push(std::string event, bool last = false) {
    {
      std::lock_guard lock(mutex);
      events.push_back({false, std::move(event)});
      finished = finished || last;
    }
    cv.notify_one();
  }
  void push_text(const std::string& text) {
    bool was_empty;
    {
      std::lock_guard lock(mutex);
      was_empty = events.empty();
      if (!events.empty() && events.back().text)
        events.back().data += text;
      else
        events.push_back({true, text});
    }
    // The reader waits for text only while the queue is empty (with text queued it waits out the flush interval
    // or the end): no wake-up per token.
    if (was_empty) cv.notify_one();
  }
};

std::string sse(const json& j) { return "data: " + hsa::dump_json(j) + "\n\n"; }

hsa::ApiError result_error(const hsa::GenerationResult& r) {
  if (r.finish_reason == "timeout")
    return {408, fmt::format("the request ran past the server's time limit"), "timeout_error", "", "timeout"};
  if (r.finish_reason == "shutdown" || r.finish_reason == "cancelled")
    return {503, "the server is shutting down", "server_error", "", "shutting_down"};
  return server_error(r.error);
}

void handle_generation(Server& s, const httplib::Request& req, httplib::Response& res, bool chat) {
  auto parsed = std::make_shared<hsa::ParsedRequest>(
      hsa::parse_generation_request(req.body, chat, *s.tokenizer, s.model_id, s.limits));
  std::string id = fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", s.next_id++);
  int64_t created = std::time(nullptr);
  bool shutting_down = false;
  auto refuse = [&] {
    if (shutting_down) return send_error(res, {503, "the server is shutting down", "server_error", "", ""});
    res.set_header("Retry-After", "1");
    send_error(res, {429, fmt::format("the server is busy ({} requests queued); retry later", s.o.queue),
                     "rate_limit_error", "", "queue_full"});
  };
  if (!parsed->stream) {
    auto promise = std::make_shared<std::promise<hsa::GenerationResult>>();
    auto future = promise->get_future();
    hsa::GenerationCallbacks cb;
    cb.done = [promise](const hsa::GenerationResult& r) { promise->set_value(r); };
    if (!s.engine->submit(parsed->generation, cb, &shutting_down)) return refuse();
    hsa::GenerationResult r = future.get();
    if (r.finish_reason != "stop" && r.finish_reason != "length") return send_error(res, result_error(r));
    return send_json(res, 200, hsa::completion_response(*parsed, r, id, created));
  }
  auto events = std::make_shared<EventQueue>();
  hsa::GenerationCallbacks cb;
  cb.progress = [events, parsed, id, created](int64_t done, int64_t total) {
    events->push(sse(hsa::progress_chunk(*parsed, id, created, done, total)));
  };
  cb.text = [events](const std::string& text) { events->push_text(text); };
  cb.done = [events, parsed, id, created](const hsa::GenerationResult& r) {
    if (r.finish_reason == "stop" || r.finish_reason == "length")
      events->push(sse(hsa::stream_chunk(*parsed, id, created, "", &r)));
    else
      events->push(sse(result_error(r).body()));
    events->push("data: [DONE]\n\n", true);
  };
  std::shared_ptr<hsa::Job> job = s.engine->submit(parsed->generation, cb, &shutting_down);
  if (!job) return refuse();
  auto keepalive = std::chrono::duration<double>(s.o.keepalive_s);
  auto flush = std::chrono::duration<double, std::milli>(s.o.stream_flush_ms);
  auto last_write = std::make_shared<std::chrono::steady_clock::time_point>();
  res.set_header("Cache-Control", "no-cache");
  // One stream per connection: node-fetch (under the openai client) reports a kept-alive chunked stream as a
  // premature close.
  res.set_header("Connection", "close");
  res.set_chunked_content_provider(
      "text/event-stream",
      [events, job, keepalive, flush, last_write, parsed, id, created](size_t, httplib::DataSink& sink) {
        std::deque<EventQueue::Event> batch;
        bool finished;
        {
          std::unique_lock lock(events->mutex);
          events->cv.wait_for(lock, keepalive, [&] { return !events->events.empty() || events->finished; });
          // At most one chunk per flush interval (unless the response ends): a chunk per token costs a wake-up,
          // a write and the client's parse per token, which on a small machine competes with the decode itself.
          const auto next = *last_write + std::chrono::duration_cast<std::chrono::steady_clock::duration>(flush);
          if (!events->finished && !events->events.empty())
            events->cv.wait_until(lock, next, [&] { return events->finished; });
          batch.swap(events->events);
          finished = events->finished;
        }
        std::string out;
        for (const EventQueue::Event& e : batch)
          out += e.text ? sse(hsa::stream_chunk(*parsed, id, created, e.data, nullptr)) : e.data;
        if (batch.empty() && !finished) out = ": keep-alive\n\n";
        if (!out.empty() && !sink.write(out.data(), out.size())) {  // the client has gone: stop generating for it
          job->cancel();
          return false;
        }
        *last_write = std::chrono::steady_clock::now();
        if (finished) sink.done();
        return true;
      },
      [job](bool success) {
        if (!success) job->cancel();
      });
}

void handle_slots(Server& s, const httplib::Request& req, httplib::Response& res) {
  int slot = std::stoi(req.matches[1].str());
  std::string action = req.get_param_value("action");
  if (action != "save" && action != "restore")
    throw hsa::ApiError{400, "action must be 'save' or 'restore'", "invalid_request_error", "action", ""};
  if (s.o.slot_save_path.empty())
    throw hsa::ApiError{501, "slot files are disabled: start the server with --slot-save-path DIR",
                        "invalid_request_error", "", "not_supported"};
  json body = hsa::parse_json_body(req.body);
  if (!body.contains("filename") || !body["filename"].is_string())
    throw hsa::ApiError{400, "'filename' (a string) is required", "invalid_request_error", "filename", ""};
  std::string name = body["filename"];
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\\') != std::string::npos || name.find('\0') != std::string::npos)
    throw hsa::ApiError{400, fmt::format("invalid filename '{}': a plain file name, no path separators", name),
                        "invalid_request_error", "filename", ""};
  if (slot < 0 || slot >= s.engine->slots())
    throw hsa::ApiError{400, fmt::format("no slot {} (the server has {})", slot, s.engine->slots()),
                        "invalid_request_error", "id_slot", ""};
  std::string path = (std::filesystem::path(s.o.slot_save_path) / name).string();
  auto t0 = std::chrono::steady_clock::now();
  try {
    if (action == "save") {
      size_t n = s.engine->save_slot(slot, path);
      send_json(res, 200,
                {{"id_slot", slot}, {"filename", name}, {"n_saved", n},
                 {"n_written", std::filesystem::file_size(path)},
                 {"timings", {{"save_ms", hsa::seconds_since(t0) * 1e3}}}});
    } else {
      if (!std::filesystem::exists(path))
        throw hsa::ApiError{404, fmt::format("no slot file '{}'", name), "invalid_request_error", "filename", ""};
      size_t n = s.engine->restore_slot(slot, path);
      send_json(res, 200,
                {{"id_slot", slot}, {"filename", name}, {"n_restored", n},
                 {"n_read", std::filesystem::file_size(path)},
                 {"timings", {{"restore_ms", hsa::seconds_since(t0) * 1e3}}}});
    }
  } catch (const hsa::Error& e) {
    throw hsa::ApiError{400, e.what(), "invalid_request_error", "filename", ""};
  }
}

// Wraps a handler: ApiError -> its status, anything else -> 500; neither takes the server down.
httplib::Server::Handler guarded(Server& s, std::function<void(const httplib::Request&, httplib::Response&)> fn) {
  return [&s, fn](const httplib::Request& req, httplib::Response& res) {
    try {
      fn(req, res);
    } catch (const hsa::ApiError& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      send_error(res, server_error(e.what()));
    }
  };
}

#ifdef __GLIBC__
constexpr int kMmapThreshold = 512 * 1024;
#endif

int run_serve(const ServeOptions& o) {
  if (o.snapshot_interval % o.segment != 0) {
    std::fprintf(stderr, "hsa: serve: --segment %lld must divide --snapshot-interval %lld\n",
                 static_cast<long long>(o.segment), static_cast<long long>(o.snapshot_interval));
    return 2;
  }
  Server s{o};
  s.api_key = o.api_key;
  if (!o.api_key_file.empty()) {
    s.api_key = hsa::read_file(o.api_key_file);
    while (!s.api_key.empty() && std::isspace(static_cast<unsigned char>(s.api_key.back()))) s.api_key.pop_back();
    HSA_CHECK(!s.api_key.empty(), "serve: --api-key-file {} is empty", o.api_key_file);
  }
  if (!o.slot_save_path.empty())
    HSA_CHECK(std::filesystem::is_directory(o.slot_save_path), "serve: --slot-save-path {} is not a directory",
              o.slot_save_path);
#ifdef __GLIBC__
  // Blocks of 512 KiB and more (large tensors) get their own mappings, returned to the system when freed. (glibc
  // otherwise raises this threshold after the first large free, and long-lived cached states then pin the heap's
  // pages between them: the resident size would creep up with the number of requests served.) Not lower: every
  // mapped block costs two system calls and a page fault per 4 KiB, and a decode step allocates temporaries of its
  // own (for the tiny model, new SWA windows of 32.5 KiB and six blocks of 308 KiB per token); with 32 or 256 KiB
  // the server decoded 40% or 25% slower than `hsa generate`. Idle trimming (the engine's janitor) returns what
  // the heap frees; docs/serve.md has the load test's memory.
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  mallopt(M_ARENA_MAX, 2);  // many connection threads: few arenas, less memory held between them
#endif
  // Signals go to one thread that waits for them (blocked here, before any thread starts, so all inherit it).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  httplib::Server svr;
  size_t threads = static_cast<size_t>(o.parallel + o.queue + 8);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(o.max_body_bytes);
  svr.set_keep_alive_max_count(1000);
  // httplib listens with a backlog of 5: bursts of connections beyond it get reset. Keep the listening socket to
  // listen again with a deeper backlog once bound.
  int listen_fd = -1;
  svr.set_socket_options([&listen_fd](int sock) {
    httplib::default_socket_options(sock);
    listen_fd = sock;
  });  // clients (the openai one) reuse connections for many requests
  svr.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (!s.api_key.empty() && req.get_header_value("Authorization") != "Bearer " + s.api_key) {
      send_error(res, {401, "invalid or missing API key (Authorization: Bearer KEY)", "authentication_error", "",
                       "invalid_api_key"});
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!s.ready) {
      send_error(res, {503, "the model is loading", "server_error", "", "loading"});
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = res.status == 404   ? fmt::format("no endpoint {} {}", req.method, req.path)
                          : res.status == 413 ? "the request body is too large"
                                              : fmt::format("HTTP {}", res.status);
    send_error(res, {res.status, message, "invalid_request_error", "", ""});
  });
  svr.Get("/health", [&s](const httplib::Request&, httplib::Response& res) {
    if (s.ready)
      send_json(res, 200, {{"status", "ok"}});
    else
      send_error(res, {503, "the model is loading", "server_error", "", "loading"});
  });
  svr.Get("/metrics", [&s](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(s), "text/plain; version=0.0.4");
  });
  svr.Get("/v1/models", [&s](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200,
              {{"object", "list"},
               {"data", json::array({{{"id", s.model_id}, {"object", "model"}, {"created", s.started},
                                      {"owned_by", "hsa"}, {"max_model_len", s.limits.max_prompt_tokens}}})}});
  });
  svr.Post("/v1/completions", guarded(s, [&s](const auto& req, auto& res) { handle_generation(s, req, res, false); }));
  svr.Post("/v1/chat/completions",
           guarded(s, [&s](const auto& req, auto& res) { handle_generation(s, req, res, true); }));
  svr.Post("/tokenize", guarded(s, [&s](const auto& req, auto& res) {
             json body = hsa::parse_json_body(req.body);
             if (!body.contains("content") || !body["content"].is_string())
               throw hsa::ApiError{400, "'content' (a string) is required", "invalid_request_error", "content", ""};
             bool special = body.value("add_special", false);
             send_json(res, 200, {{"tokens", s.tokenizer->encode(body["content"].get<std::string>(), special)}});
           }));
  svr.Post("/detokenize", guarded(s, [&s](const auto& req, auto& res) {
             json body = hsa::parse_json_body(req.body);
             if (!body.contains("tokens") || !body["tokens"].is_array())
               throw hsa::ApiError{400, "'tokens' (an array of ids) is required", "invalid_request_error", "tokens",
                                   ""};
             std::vector<int32_t> ids;
             for (const json& t : body["tokens"]) {
               if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= s.tokenizer->vocab_size())
                 throw hsa::ApiError{400, fmt::format("token ids must be integers in [0, {})", s.tokenizer->vocab_size()),
                                     "invalid_request_error", "tokens", ""};
               ids.push_back(t.get<int32_t>());
             }
             send_json(res, 200, {{"content", s.tokenizer->decode(ids)}});
           }));
  svr.Post(R"(/slots/(\d+))", guarded(s, [&s](const auto& req, auto& res) { handle_slots(s, req, res); }));

  int port = o.port;
  if (port == 0) {
    port = svr.bind_to_any_port(o.host);
    HSA_CHECK(port > 0, "serve: cannot listen on {} (any port)", o.host);
  } else {
    HSA_CHECK(svr.bind_to_port(o.host, port), "serve: cannot listen on {}:{} (in use, or not an address here)",
              o.host, port);
  }
  if (listen_fd >= 0) ::listen(listen_fd, 1024);
  fmt::print(stderr, "hsa serve: listening on http://{}:{} (loading {})\n", o.host, port, o.model);
  std::thread listener([&svr] { svr.listen_after_bind(); });

  int exit_code = 0;
  try {
    std::string dir = hsa::resolve_checkpoint_dir(o.model);
    s.checkpoint = std::make_unique<hsa::Checkpoint>(hsa::load_checkpoint(dir));
    hsa::Placement place = hsa::resolve_placement(o.device, o.dtype);
    s.tokenizer = hsa::load_tokenizer(s.checkpoint->config.tokenizer, dir);
    s.model = std::make_unique<hsa::Model>(hsa::place_model(*s.checkpoint, place));
    s.model_id = o.alias.empty() ? std::filesystem::path(dir).filename().string() : o.alias;
    s.limits.max_prompt_tokens = plan_max_positions(*s.checkpoint, place, o);
    s.limits.max_tokens = o.max_tokens;
    s.limits.default_max_tokens = std::min<int64_t>(256, o.max_tokens);
    hsa::EngineOptions eo{o.parallel,    o.queue,     o.segment, o.snapshot_interval,
                          o.cache_bytes, o.timeout_s, s.limits.max_prompt_tokens};
    s.engine = std::make_unique<hsa::Engine>(*s.model, *s.tokenizer,
                                             hsa::model_fingerprint(*s.checkpoint, s.tokenizer->name()), eo);
    s.ready = true;
    fmt::print(stderr, "hsa serve: ready: model {} on {} ({}), {} slots, prompts up to {} tokens\n", s.model_id,
               place.description, hsa::dtype_name(place.dtype), o.parallel, s.limits.max_prompt_tokens);
  } catch (const std::exception& e) {
    fmt::print(stderr, "hsa: error: {}\n", e.what());
    exit_code = 1;
  }
  if (exit_code == 0) {
    int sig = 0;
    sigwait(&signals, &sig);
    fmt::print(stderr, "hsa serve: {} received, finishing requests (up to {}s)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               o.shutdown_grace_s);
    s.engine->shutdown(o.shutdown_grace_s);
  }
  svr.stop();
  listener.join();
  s.engine.reset();
  fmt::print(stderr, "hsa serve: stopped\n");
  return exit_code;
}
#else
int run_serve(const ServeOptions&) {
  std::fprintf(stderr, "hsa: error: serve: this hsa was built without cpp-httplib (install libcpp-httplib-dev, "
                       "see tools/bootstrap, and rebuild)\n");
  return 1;
}
#endif

hsa::cli::Command serve_command("serve", "OpenAI-compatible HTTP server with prompt-state reuse", [](CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  app.add_option("-m,--model", o->model, "checkpoint directory or run directory")->required();
  hsa::cli::add_placement_options(app, o->device, o->dtype);
  app.add_option("--host", o->host, "address to listen on")->capture_default_str();
  app.add_option("--port", o->port, "port (0: any free port, printed)")->capture_default_str()->check(
      CLI::Range(0, 65535));
  app.add_option("--alias", o->alias, "model id in the API (default: the model directory's name)");
  app.add_option("--parallel", o->parallel, "requests processed together (slots)")->capture_default_str()->check(
      CLI::Range(1, 256));
  app.add_option("--queue", o->queue, "requests waiting beyond the slots before 429")->capture_default_str()->check(
      CLI::Range(0, 100000));
  auto key = app.add_option("--api-key", o->api_key, "require Authorization: Bearer KEY (not for /health)");
  app.add_option("--api-key-file", o->api_key_file, "read the API key from a file")
      ->check(CLI::ExistingFile)
      ->excludes(key);
  app.add_option("--state-cache-bytes", o->cache_bytes, "memory for cached prompt states (LRU)")
      ->capture_default_str();
  app.add_option("--timeout", o->timeout_s, "per-request time limit in seconds")->capture_default_str()->check(
      CLI::PositiveNumber);
  app.add_option("--segment", o->segment, "prefill segment in tokens")->capture_default_str()->check(
      CLI::PositiveNumber);
  app.add_option("--snapshot-interval", o->snapshot_interval,
                 "keep SWA windows every this many positions for prefix reuse (multiple of the chunk size and of "
                 "--segment)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-tokens-limit", o->max_tokens, "largest max_tokens a request may ask for")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-prompt-tokens", o->max_prompt_tokens, "cap on prompt + max_tokens (0: the memory plan's)")
      ->capture_default_str();
  app.add_option("--max-body-bytes", o->max_body_bytes, "largest request body")->capture_default_str();
  app.add_option("--stream-flush-ms", o->stream_flush_ms,
                 "streamed responses send at most one chunk per this many milliseconds (the tokens generated "
                 "meanwhile go together); 0: a chunk as soon as each token is ready")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  app.add_option("--keepalive", o->keepalive_s, "seconds between SSE keep-alive comments")->capture_default_str()->check(
      CLI::PositiveNumber);
  app.add_option("--shutdown-grace", o->shutdown_grace_s, "seconds running requests may finish after SIGTERM")
      ->capture_default_str();
  app.add_option("--slot-save-path", o->slot_save_path, "directory for POST /slots/{id}?action=save|restore files");
  return [o] { return run_serve(*o); };
});

}  // namespace

#include "serve/openai_api.h"

#include <fmt/format.h>

namespace hsa {

using nlohmann::json;

json ApiError::body() const {
  return json{{"error",
               {{"message", message},
                {"type", type},
                {"param", param.empty() ? json(nullptr) : json(param)},
                {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message, const std::string& code = "") {
  throw ApiError{400, message, "invalid_request_error", param, code};
}

// The value of `key` when present and not null, checked against `type` (a name for the message).
const json* field(const json& body, const char* key, json::value_t type, const char* type_name) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  bool ok = it->type() == type ||
            (type == json::value_t::number_float &&
             (it->is_number_integer() || it->is_number_unsigned())) ||
            (type == json::value_t::number_integer && it->is_number_unsigned());
  if (!ok) bad(key, fmt::format("'{}' must be {}, got {}", key, type_name, it->type_name()));
  return &*it;
}

std::vector<int32_t> token_array(const json& a, const Tokenizer& tok, const char* param) {
  std::vector<int32_t> ids;
  for (const json& v : a) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tok.vocab_size())
      bad(param, fmt::format("'{}' token ids must be integers in [0, {})", param, tok.vocab_size()));
    ids.push_back(v.get<int32_t>());
  }
  return ids;
}

}  // namespace

json parse_json_body(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    // nlohmann refuses invalid UTF-8 in strings as a parse error too: say which one it is.
    try {
      json ignored = json::parse(body);
    } catch (const json::parse_error& e) {
      std::string what = e.what();
      bool utf8 = what.find("UTF-8") != std::string::npos || what.find("utf-8") != std::string::npos;
      throw ApiError{400, utf8 ? "request body is not valid UTF-8: " + what : "malformed JSON: " + what,
                     "invalid_request_error", "", utf8 ? "invalid_utf8" : "invalid_json"};
    }
  }
  if (!j.is_object()) throw ApiError{400, "the request body must be a JSON object", "invalid_request_error", "", ""};
  return j;
}

std::string apply_chat_template(const json& messages) {
  std::string out;
  for (const json& m : messages) out += m.at("role").get<std::string>() + ": " + m.at("content").get<std::string>() + "\n";
  return out + "assistant:";
}

ParsedRequest parse_generation_request(const std::string& text, bool chat, const Tokenizer& tok,
                                       const std::string& model_id, const ApiLimits& limits) {
  json body = parse_json_body(text);
  ParsedRequest r;
  r.chat = chat;
  r.model = model_id;
  if (const json* m = field(body, "model", json::value_t::string, "a string")) {
    if (m->get<std::string>() != model_id)
      throw ApiError{404, fmt::format("model '{}' does not exist; this server serves '{}'", m->get<std::string>(),
                                      model_id),
                     "invalid_request_error", "model", "model_not_found"};
  }
  GenerationRequest& g = r.generation;
  if (chat) {
    const json* msgs = field(body, "messages", json::value_t::array, "an array of messages");
    if (!msgs || msgs->empty()) bad("messages", "'messages' must be a non-empty array");
    for (const json& m : *msgs) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
          !m["content"].is_string())
        bad("messages", "each message must be an object with string 'role' and 'content'");
    }
    g.prompt = tok.encode(apply_chat_template(*msgs), true);
  } else {
    auto it = body.find("prompt");
    if (it == body.end() || it->is_null()) bad("prompt", "'prompt' is required");
    if (it->is_string()) {
      g.prompt = tok.encode(it->get<std::string>(), true);
    } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
      g.prompt = tok.encode((*it)[0].get<std::string>(), true);
    } else if (it->is_array() && !it->empty() && (*it)[0].is_number()) {
      g.prompt = token_array(*it, tok, "prompt");
    } else {
      bad("prompt", "'prompt' must be a string, an array of one string, or an array of token ids");
    }
  }
  if (g.prompt.empty()) bad("prompt", "the prompt is empty");
  auto n = static_cast<int64_t>(g.prompt.size());
  if (n > limits.max_prompt_tokens)
    throw ApiError{400,
                   fmt::format("the prompt has {} tokens but this server accepts at most {} (its memory plan)", n,
                               limits.max_prompt_tokens),
                   "invalid_request_error", chat ? "messages" : "prompt", "context_length_exceeded"};
  g.max_tokens = limits.default_max_tokens;
  const char* max_key = body.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (const json* v = field(body, max_key, json::value_t::number_integer, "an integer")) {
    int64_t m = v->get<int64_t>();
    if (m < 1 || m > limits.max_tokens)
      bad(max_key, fmt::format("'{}' must be in [1, {}], got {}", max_key, limits.max_tokens, m));
    g.max_tokens = m;
  }
  if (const json* v = field(body, "temperature", json::value_t::number_float, "a number")) {
    double t = v->get<double>();
    if (!(t >= 0 && t <= 2)) bad("temperature", fmt::format("'temperature' must be in [0, 2], got {}", t));
    g.sampling.temperature = t;
  }
  if (const json* v = field(body, "top_p", json::value_t::number_float, "a number")) {
    double p = v->get<double>();
    if (!(p > 0 && p <= 1)) bad("top_p", fmt::format("'top_p' must be in (0, 1], got {}", p));
    g.sampling.top_p = p;
  }
  if (const json* v = field(body, "seed", json::value_t::number_integer, "an integer")) g.seed = v->get<uint64_t>();
  if (const json* v = field(body, "n", json::value_t::number_integer, "an integer"))
    if (v->get<int64_t>() != 1) bad("n", "only n = 1 is supported");
  if (const json* v = field(body, "stream", json::value_t::boolean, "a boolean")) r.stream = v->get<bool>();
  if (const json* v = field(body, "cache_prompt", json::value_t::boolean, "a boolean")) g.use_cache = v->get<bool>();
  auto stop = body.find("stop");
  if (stop != body.end() && !stop->is_null()) {
    if (stop->is_string()) {
      g.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array() && stop->size() <= 4) {
      for (const json& s : *stop) {
        if (!s.is_string()) bad("stop", "'stop' must be a string or an array of at most 4 strings");
        g.stop.push_back(s.get<std::string>());
      }
    } else {
      bad("stop", "'stop' must be a string or an array of at most 4 strings");
    }
    for (const std::string& s : g.stop)
      if (s.empty()) bad("stop", "stop strings must not be empty");
  }
  if (n + g.max_tokens > limits.max_prompt_tokens)
    throw ApiError{400,
                   fmt::format("the prompt ({} tokens) plus max_tokens ({}) exceeds the {} positions this server can "
                               "hold",
                               n, g.max_tokens, limits.max_prompt_tokens),
                   "invalid_request_error", "max_tokens", "context_length_exceeded"};
  return r;
}

json usage_json(const GenerationResult& r) {
  return json{{"prompt_tokens", r.prompt_tokens},
              {"completion_tokens", r.completion_tokens},
              {"total_tokens", r.prompt_tokens + r.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
}

namespace {
json finish(const GenerationResult& r) {
  if (r.finish_reason == "stop" || r.finish_reason == "length") return r.finish_reason;
  return r.finish_reason.empty() ? json(nullptr) : json(r.finish_reason);
}
json timings(const GenerationResult& r) {
  return json{{"queue_ms", r.queue_s * 1e3},
              {"prompt_ms", r.prefill_s * 1e3},
              {"predicted_ms", r.decode_s * 1e3},
              {"prompt_per_second", (r.prompt_tokens - r.cached_tokens) / std::max(r.prefill_s, 1e-9)},
              {"predicted_per_second", r.completion_tokens / std::max(r.decode_s, 1e-9)}};
}
}  // namespace

json completion_response(const ParsedRequest& req, const GenerationResult& r, const std::string& id,
                         int64_t created) {
  json choice{{"index", 0}, {"finish_reason", finish(r)}, {"logprobs", nullptr}};
  if (req.chat)
    choice["message"] = {{"role", "assistant"}, {"content", r.text}};
  else
    choice["text"] = r.text;
  return json{{"id", id},
              {"object", req.chat ? "chat.completion" : "text_completion"},
              {"created", created},
              {"model", req.model},
              {"choices", json::array({choice})},
              {"usage", usage_json(r)},
              {"timings", timings(r)}};
}

json stream_chunk(const ParsedRequest& req, const std::string& id, int64_t created, const std::string& text,
                  const GenerationResult* final_result) {
  json choice{{"index", 0}, {"finish_reason", final_result ? finish(*final_result) : json(nullptr)}};
  if (req.chat)
    choice["delta"] = final_result ? json::object() : json{{"content", text}};
  else
    choice["text"] = text;
  json chunk{{"id", id},
             {"object", req.chat ? "chat.completion.chunk" : "text_completion"},
             {"created", created},
             {"model", req.model},
             {"choices", json::array({choice})}};
  if (final_result) {
    chunk["usage"] = usage_json(*final_result);
    chunk["timings"] = timings(*final_result);
  }
  return chunk;
}

json progress_chunk(const ParsedRequest& req, const std::string& id, int64_t created, int64_t done, int64_t total) {
  return json{{"id", id},
              {"object", req.chat ? "chat.completion.chunk" : "text_completion"},
              {"created", created},
              {"model", req.model},
              {"choices", json::array()},
              {"prefill_progress", {{"processed", done}, {"total", total}}}};
}

}  // namespace hsa

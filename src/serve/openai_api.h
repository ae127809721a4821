// The OpenAI-compatible request and response shapes of `hsa serve` (as llama.cpp's and vLLM's servers use
// them), without HTTP: parsing and validating request bodies, the chat template, response and stream chunks.
// docs/serve.md lists the fields.
#pragma once
#include "serve/engine.h"

#include <nlohmann/json.hpp>

#include <string>

namespace hsa {

// A request the server refuses: HTTP status and an OpenAI-style error object.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" -> null
  std::string code;   // "" -> null
  nlohmann::json body() const;
};

struct ApiLimits {
  int64_t max_prompt_tokens = 0;  // from the memory plan
  int64_t max_tokens = 4096;      // largest max_tokens accepted
  int64_t default_max_tokens = 256;
};

struct ParsedRequest {
  GenerationRequest generation;
  bool stream = false;
  bool chat = false;
  std::string model;
};

// Parses a /v1/completions (chat = false) or /v1/chat/completions body; throws ApiError.
ParsedRequest parse_generation_request(const std::string& body, bool chat, const Tokenizer& tokenizer,
                                       const std::string& model_id, const ApiLimits& limits);
// The body as a JSON object; throws ApiError on malformed JSON or invalid UTF-8.
nlohmann::json parse_json_body(const std::string& body);

// The chat template: "<role>: <content>\n" per message, then "assistant:" (docs/serve.md).
std::string apply_chat_template(const nlohmann::json& messages);

nlohmann::json usage_json(const GenerationResult& r);
// The complete (non-streamed) response.
nlohmann::json completion_response(const ParsedRequest& req, const GenerationResult& r, const std::string& id,
                                   int64_t created);
// One stream chunk with `text` (chat: a delta), and optionally the finish reason and usage.
nlohmann::json stream_chunk(const ParsedRequest& req, const std::string& id, int64_t created, const std::string& text,
                            const GenerationResult* final_result);
// A stream chunk that carries no text, only the prefill progress.
nlohmann::json progress_chunk(const ParsedRequest& req, const std::string& id, int64_t created, int64_t done,
                              int64_t total);

// Serialises with invalid UTF-8 replaced (model output is bytes).
std::string dump_json(const nlohmann::json& j);

}  // namespace hsa

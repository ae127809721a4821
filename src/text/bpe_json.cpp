// BpeTokenizer <-> Hugging Face tokenizer.json (what is supported: text/bpe_tokenizer.h).
#include "text/bpe_tokenizer.h"

#include "util/file_util.h"

#include <hsa/error.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

namespace hsa {

namespace {

using nlohmann::json;

std::string type_of(const json& j) { return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "?"; }

// A component that is either `wanted` itself or a Sequence whose only member is; nullptr for null.
const json* single_component(const json& j, const char* list_key, const std::string& name, const char* what) {
  if (j.is_null()) return nullptr;
  if (type_of(j) == "Sequence" && j.contains(list_key) && j[list_key].is_array()) {
    const json& members = j[list_key];
    if (members.empty()) return nullptr;
    HSA_CHECK(members.size() == 1, "tokenizer {}: {} is a Sequence of {} parts; only one is supported", name, what,
              members.size());
    return &members[0];
  }
  return &j;
}

bool flag(const json& obj, const char* key, bool fallback) {
  if (!obj.contains(key) || obj[key].is_null()) return fallback;
  return obj[key].get<bool>();
}

bool empty_or_null(const json& obj, const char* key) {
  return !obj.contains(key) || obj[key].is_null() || (obj[key].is_string() && obj[key].get<std::string>().empty());
}

BpeSpec spec_from_json(const json& root, const std::string& name) {
  HSA_CHECK(root.is_object(), "tokenizer {}: not a tokenizer.json (the top level is not an object)", name);
  HSA_CHECK(root.contains("model") && root["model"].is_object(), "tokenizer {}: no \"model\" object", name);
  const json& model = root["model"];
  const std::string model_type = type_of(model);
  HSA_CHECK(model_type == "BPE" || (model_type == "?" && model.contains("merges")),
            "tokenizer {}: model type {} is not supported (only BPE)", name, model_type);
  HSA_CHECK(model.contains("vocab") && model["vocab"].is_object(), "tokenizer {}: the BPE model has no vocab object",
            name);
  HSA_CHECK(model.contains("merges") && model["merges"].is_array(), "tokenizer {}: the BPE model has no merges list",
            name);
  HSA_CHECK(!model.contains("dropout") || model["dropout"].is_null() || model["dropout"].get<double>() == 0.0,
            "tokenizer {}: BPE dropout is not supported", name);
  HSA_CHECK(empty_or_null(model, "continuing_subword_prefix") && empty_or_null(model, "end_of_word_suffix"),
            "tokenizer {}: continuing_subword_prefix / end_of_word_suffix are not supported (not a byte-level BPE)",
            name);
  HSA_CHECK(!flag(model, "byte_fallback", false), "tokenizer {}: byte_fallback is not supported (not a byte-level BPE)",
            name);

  BpeSpec spec;
  spec.ignore_merges = flag(model, "ignore_merges", false);
  spec.vocab.reserve(model["vocab"].size());
  for (const auto& [token, id] : model["vocab"].items()) {
    HSA_CHECK(id.is_number_integer(), "tokenizer {}: vocab entry '{}' has a non-integer id", name, token);
    spec.vocab.emplace_back(token, id.get<int32_t>());
  }
  spec.merges.reserve(model["merges"].size());
  for (const json& m : model["merges"]) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      HSA_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos,
                "tokenizer {}: merge \"{}\" is not two tokens separated by one space", name, s);
      spec.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else {
      HSA_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
                "tokenizer {}: merge {} is neither \"a b\" nor [\"a\", \"b\"]", name, m.dump());
      spec.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    }
  }

  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    for (const json& t : root["added_tokens"]) {
      HSA_CHECK(t.is_object() && t.contains("id") && t.contains("content"),
                "tokenizer {}: an added token lacks id or content: {}", name, t.dump());
      BpeAddedToken added{t["id"].get<int32_t>(), t["content"].get<std::string>(), flag(t, "special", false)};
      for (const char* option : {"lstrip", "rstrip", "single_word"})
        HSA_CHECK(!flag(t, option, false), "tokenizer {}: added token '{}' sets {}, which is not supported", name,
                  added.content, option);
      spec.added_tokens.push_back(std::move(added));
    }
  }

  static const json null_json;
  const auto member = [&](const char* key) -> const json& { return root.contains(key) ? root[key] : null_json; };
  if (const json* n = single_component(member("normalizer"), "normalizers", name, "the normalizer")) {
    HSA_CHECK(type_of(*n) == "NFC", "tokenizer {}: normalizer {} is not supported (only NFC or none)", name,
              type_of(*n));
    spec.nfc = true;
  }
  const json* pre = single_component(member("pre_tokenizer"), "pretokenizers", name, "the pre_tokenizer");
  HSA_CHECK(pre && type_of(*pre) == "ByteLevel", "tokenizer {}: pre_tokenizer {} is not supported (only ByteLevel)",
            name, pre ? type_of(*pre) : "null");
  spec.add_prefix_space = flag(*pre, "add_prefix_space", true);  // Hugging Face's default
  spec.use_regex = flag(*pre, "use_regex", true);
  if (const json* d = single_component(member("decoder"), "decoders", name, "the decoder"))
    HSA_CHECK(type_of(*d) == "ByteLevel", "tokenizer {}: decoder {} is not supported (only ByteLevel)", name,
              type_of(*d));
  return spec;
}

}  // namespace

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_json(std::string_view text, const std::string& name) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    fail("tokenizer {}: not valid JSON: {}", name, e.what());
  }
  try {
    return std::make_unique<BpeTokenizer>(spec_from_json(root, name), name);
  } catch (const json::exception& e) {
    fail("tokenizer {}: unexpected value: {}", name, e.what());
  }
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::load(const std::string& path) { return from_json(read_file(path), path); }

std::string BpeTokenizer::to_json() const {
  using ojson = nlohmann::ordered_json;
  ojson added = ojson::array();
  for (const BpeAddedToken& t : spec_.added_tokens)
    added.push_back({{"id", t.id},
                     {"content", t.content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", t.special}});
  const ojson byte_level = {{"type", "ByteLevel"},
                            {"add_prefix_space", spec_.add_prefix_space},
                            {"trim_offsets", true},
                            {"use_regex", spec_.use_regex}};
  std::vector<std::pair<std::string, int32_t>> vocab = spec_.vocab;
  std::sort(vocab.begin(), vocab.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  ojson vocab_json = ojson::object();
  for (const auto& [token, id] : vocab) vocab_json[token] = id;
  ojson merges = ojson::array();
  for (const auto& [a, b] : spec_.merges) merges.push_back(ojson::array({a, b}));
  ojson root = {{"version", "1.0"},
                {"truncation", nullptr},
                {"padding", nullptr},
                {"added_tokens", added},
                {"normalizer", spec_.nfc ? ojson{{"type", "NFC"}} : ojson(nullptr)},
                {"pre_tokenizer", byte_level},
                {"post_processor", byte_level},
                {"decoder", byte_level},
                {"model",
                 {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"ignore_merges", spec_.ignore_merges},
                  {"vocab", vocab_json},
                  {"merges", merges}}}};
  return root.dump(1) + "\n";
}

void BpeTokenizer::save(const std::string& path) const { write_file_atomic(path, to_json()); }

}  // namespace hsa

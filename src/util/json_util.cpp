#include "util/json_util.h"

#include <hsa/error.h>

#include <set>
#include <vector>

namespace hsa {

nlohmann::json parse_json_strict(std::string_view text, const std::string& source) {
  // One set of keys per open object; the parser reports keys in document order, depth first.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) open_objects.emplace_back();
    else if (event == E::object_end && !open_objects.empty()) open_objects.pop_back();
    else if (event == E::key && !open_objects.empty() && duplicate.empty() &&
             !open_objects.back().insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", source, e.what());
  }
  if (!duplicate.empty()) fail("{}: duplicate key '{}' (a key may appear once per object)", source, duplicate);
  return json;
}

}  // namespace hsa

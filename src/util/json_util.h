// Strict JSON reading for the files `hsa` trusts (configs, checkpoint headers, run options, reports): the JSON
// grammar allows an object to repeat a key and most parsers silently keep the last one, so a file edited by hand
// or corrupted could mean something other than it shows. Here a repeated key is an error.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace hsa {

// Parses `text`; throws hsa::Error "<source>: invalid JSON: ..." or "<source>: duplicate key 'k' in ...".
nlohmann::json parse_json_strict(std::string_view text, const std::string& source);

}  // namespace hsa

#include "text/fortunes.h"

namespace hsa::data {

std::vector<std::string> split_fortunes(std::string_view file_text) {
  std::vector<std::string> out;
  std::string current;
  bool has_text = false;
  auto flush = [&] {
    if (has_text) out.push_back(current);
    current.clear();
    has_text = false;
  };
  size_t from = 0;
  while (from < file_text.size()) {
    size_t end = file_text.find('\n', from);
    if (end == std::string_view::npos) end = file_text.size();
    std::string_view line = file_text.substr(from, end - from);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    from = end + 1;
    if (line == "%") {
      flush();
      continue;
    }
    if (!current.empty() || !line.empty()) {
      if (!current.empty()) current += '\n';
      current += line;
    }
    if (line.find_first_not_of(" \t") != std::string_view::npos) has_text = true;
  }
  flush();
  // Trailing blank lines of a fortune are not part of it.
  for (std::string& f : out)
    while (!f.empty() && (f.back() == '\n' || f.back() == ' ' || f.back() == '\t')) f.pop_back();
  return out;
}

}  // namespace hsa::data

// Fortune files (Debian's fortunes, fortunes-min): quotations separated by lines holding only '%'.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace hsa::data {

// The fortunes of one file in order, each its lines joined by '\n' without the separators; fortunes that
// are empty or whitespace only are left out. Handles a missing final separator and \r\n line ends.
std::vector<std::string> split_fortunes(std::string_view file_text);

}  // namespace hsa::data

// Reading files that Debian may have gzip-compressed (man pages, documentation, dictd's .dict.dz).
#pragma once
#include <string>

namespace hsa {

// The whole file as a string, decompressed when it is gzip (dictzip included), as is otherwise. Throws
// hsa::Error naming the file when it cannot be opened or its compressed data is corrupt.
std::string read_file_gunzip(const std::string& path);

}  // namespace hsa

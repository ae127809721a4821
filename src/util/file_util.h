// Crash-safe file writes: a reader sees either the old file or the complete new one, never a torn one.
#pragma once
#include <string>
#include <string_view>

namespace hsa {

// Writes `bytes` to `path.tmp`, flushes and fsyncs it, renames it over `path`, then fsyncs the directory
// so the rename itself survives a crash. Throws hsa::Error naming the file and the failing step.
void write_file_atomic(const std::string& path, std::string_view bytes);

// The whole file as a string; throws hsa::Error naming the file when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace hsa

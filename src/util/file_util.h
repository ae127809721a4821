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

// Opens `path` read-only and returns its descriptor only when it is a regular file: a FIFO, device or directory
// named as a model file would block a reader forever or feed it endless bytes, so it is refused (hsa::Error
// naming `what` and the path). The open does not block, whatever the file is.
int open_regular_file(const std::string& path, const std::string& what);

// read_file for files that must be regular (configs, options, weights): see open_regular_file.
std::string read_regular_file(const std::string& path, const std::string& what);

}  // namespace hsa

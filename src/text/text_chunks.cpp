#include "text/text_chunks.h"

#include <hsa/error.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

namespace hsa {

namespace {
bool ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool ascii_non_space(char c) { return c > ' ' && c < 0x7f; }
}  // namespace

size_t last_safe_cut(std::string_view text) {
  for (size_t p = text.size() >= 2 ? text.size() - 2 : 0; p >= 1; --p)
    if (text[p] == ' ' && ascii_letter(text[p + 1]) && ascii_non_space(text[p - 1])) return p;
  return 0;
}

TextChunker::TextChunker(size_t chunk_bytes, std::function<void(std::string_view)> sink)
    : chunk_bytes_(chunk_bytes), sink_(std::move(sink)) {}

void TextChunker::push(std::string_view text) {
  buffer_.append(text);
  while (buffer_.size() >= chunk_bytes_) {
    size_t cut = last_safe_cut(buffer_);
    if (cut == 0) {
      if (buffer_.size() < 16 * chunk_bytes_) return;  // wait for a space
      cut = buffer_.size();
    }
    sink_(std::string_view(buffer_).substr(0, cut));
    buffer_.erase(0, cut);  // what is left has no safe cut: the loop ends unless it alone is oversized
  }
}

void TextChunker::flush() {
  if (!buffer_.empty()) sink_(buffer_);
  buffer_.clear();
}

void for_each_file_chunk(const std::string& path, size_t chunk_bytes, const std::function<void(std::string_view)>& fn,
                         const std::function<void(int64_t)>& on_read) {
  std::ifstream in(path, std::ios::binary);
  HSA_CHECK(in.good(), "cannot read {}: {}", path, std::strerror(errno));
  TextChunker chunker(chunk_bytes, fn);
  std::vector<char> block(chunk_bytes);
  int64_t total = 0;
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    chunker.push(std::string_view(block.data(), static_cast<size_t>(got)));
    total += got;
    if (on_read) on_read(total);
  }
  HSA_CHECK(!in.bad(), "reading {} failed", path);
  chunker.flush();
}

}  // namespace hsa

// Feeding a large text to the BPE tokenizer (or its trainer) a piece at a time, cut only where the GPT-2
// pre-tokenizer (text/pretokenizer.h) would cut anyway, so the pieces tokenize exactly like the whole text.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace hsa {

// The last position p in `text` where the pre-tokenizer certainly starts a new pre-token and whose text after it
// does not depend on what came before: a space preceded by an ASCII non-space and followed by an ASCII letter.
// 0 when there is none.
size_t last_safe_cut(std::string_view text);

// Buffers pushed text and passes it to `sink` in pieces of about `chunk_bytes`, each ending at a safe cut
// (a piece grows past 16 x chunk_bytes without one only to bound memory on text without spaces).
class TextChunker {
 public:
  TextChunker(size_t chunk_bytes, std::function<void(std::string_view)> sink);
  void push(std::string_view text);
  void flush();  // passes on whatever is buffered (the end of a document)

 private:
  size_t chunk_bytes_;
  std::function<void(std::string_view)> sink_;
  std::string buffer_;
};

// Calls `fn(piece)` for the file's text in order, in pieces of about `chunk_bytes` (the last one unsafe only
// by the end of the file); `on_read(bytes_so_far)` after each read, for progress. Throws naming the file.
void for_each_file_chunk(const std::string& path, size_t chunk_bytes, const std::function<void(std::string_view)>& fn,
                         const std::function<void(int64_t)>& on_read = {});

}  // namespace hsa

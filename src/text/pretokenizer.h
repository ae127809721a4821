// The GPT-2 split of text into pre-tokens ("words") that BPE merges never cross. It is the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// written out as a scanner (one pass, no backtracking), with \s read as Unicode White_Space as the Rust
// `tokenizers` crate does. Text that is not valid UTF-8 is split into maximal valid runs, each split as if it
// were the whole text, and every invalid byte is a pre-token of its own, so any byte string has a split.
#pragma once
#include <string_view>

namespace hsa {

// Calls `emit(std::string_view piece)` for each pre-token of `text`, in order; the pieces concatenate to `text`.
template <class Emit>
void split_gpt2(std::string_view text, Emit&& emit);

}  // namespace hsa

#include "text/pretokenizer_impl.h"

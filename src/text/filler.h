// Filler text for synthetic long-context tasks: the haystack the needles hide in.
// Either copied from a user corpus or generated from a built-in vocabulary; deterministic given the Rng.
#pragma once
#include <hsa/random.h>

#include <cstdint>
#include <memory>
#include <string>

namespace hsa {

class FillerText {
 public:
  // Built-in generator: English-like sentences from a few hundred common words and simple templates.
  // The vocabulary has no digits and none of the words the task needles and questions use ("pass",
  // "key", "magic", "number", "VAR", ...), so a needle can never appear in the filler by accident.
  FillerText();
  // Copies text from `corpus` (non-empty) at deterministic random offsets, starting at a line boundary
  // and wrapping around at the end.
  explicit FillerText(std::string corpus);

  // Exactly n_bytes of text (n_bytes >= 0). Consumes random numbers from rng.
  std::string take(int64_t n_bytes, Rng& rng) const;

 private:
  // null: built-in generator. Shared, so copies of a FillerText (one per batch source) cost nothing even for a
  // corpus of gigabytes.
  std::shared_ptr<const std::string> corpus_;
};

}  // namespace hsa

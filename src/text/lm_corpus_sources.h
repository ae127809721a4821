// Where the language-model corpus comes from: English prose and documentation in Debian 12 main packages,
// each read as documents of text lines (one paragraph, heading or entry per line) by the converter for its
// format. Every source reads only the files its packages installed (dpkg's file lists), so two machines with
// the same package versions build the same corpus.
#pragma once
#include "text/filler_sources.h"

#include <filesystem>
#include <string>
#include <vector>

namespace hsa::data {

struct LmSource {
  std::string name;                   // prefix of its document ids
  std::vector<std::string> packages;  // Debian packages it is read from (all must be installed)
  std::string format;                 // fortunes, html, rst, pod, man, dictd or wordnet
  std::string documents;              // what one document is, for the manifest
  std::string under;                  // html read from the packages' files: the folder they are under
  std::string skip_prefix = {};       // html: pages whose file name starts with it are left out (redirects)
};

// Every source, in the order the corpus is assembled (earlier sources win exact-duplicate ties).
const std::vector<LmSource>& lm_sources();

// The documents of a source installed under `root`, ordered by id, each line a paragraph of raw (uncleaned)
// text; empty when one of its packages is not installed. Unreadable files throw hsa::Error naming the file.
std::vector<FillerDocument> read_lm_source(const LmSource& source, const std::filesystem::path& root);

}  // namespace hsa::data

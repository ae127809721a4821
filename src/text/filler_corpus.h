// `hsa data filler`: natural English filler text for the synthetic tasks' haystacks and for natural-text
// training, prepared from installed Debian documentation packages (data/filler_sources.h) and split by
// document into a training part and an evaluation part that share no document and no line.
//
// Pipeline, per source: read documents -> clean each line (ascii_line, is_prose with the source's rule) ->
// drop lines that look like a task needle or answer (looks_like_needle) -> drop boilerplate (a line found in
// kBoilerplateDocuments or more documents of the source: menus, footers, stock attributions) -> drop empty
// documents. Then over all sources: drop exact duplicate documents (the first id wins) -> split by
// is_eval_document(id) -> drop every evaluation line that also occurs in the training part.
//
// Output files: one document after another, its lines joined by '\n', documents separated by a blank line.
#pragma once
#include "text/filler_sources.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace hsa::data {

constexpr int kBoilerplateDocuments = 4;

// 64-bit FNV-1a of `text` mixed by the splitmix64 finaliser (so its low bits are usable for a modulo): the
// split key of documents and the fingerprint used to deduplicate text.
uint64_t text_hash(std::string_view text);

// Deterministic split key: 64-bit FNV-1a of the id, mixed by the splitmix64 finaliser; the document is for
// evaluation when that value mod 100 < eval_percent. The same id lands in the same part on every machine.
bool is_eval_document(std::string_view id, int eval_percent);

// Cleans one source's raw documents as described above (needle, prose and boilerplate filters).
std::vector<FillerDocument> clean_filler_documents(std::vector<FillerDocument> raw, const ProseRule& rule);

struct FillerSplit {
  std::vector<FillerDocument> train, eval;
};
// Deduplicates, splits and makes the parts line-disjoint, as described above. eval_percent in [1, 99].
FillerSplit split_filler_documents(std::vector<FillerDocument> docs, int eval_percent);

// Documents as written to the output files.
std::string filler_text(const std::vector<FillerDocument>& docs);

struct FillerCorpusOptions {
  std::filesystem::path root = "/";       // where the packages are looked up (tests pass a fake tree)
  std::filesystem::path out_dir = "data";
  int eval_percent = 10;
};

struct FillerSourceReport {
  FillerSource source;
  int64_t documents = 0;  // after cleaning
  int64_t bytes = 0;      // of cleaned text
};

struct FillerPartReport {
  std::string path;
  int64_t documents = 0;
  int64_t lines = 0;
  int64_t bytes = 0;
};

struct FillerCorpusReport {
  std::vector<FillerSourceReport> sources;  // every known source; documents == 0 for missing ones
  FillerPartReport train, eval;
  std::string manifest_path;
};

// Reads every installed source, writes <out_dir>/filler-train.txt, filler-eval.txt and filler-manifest.json
// (sources, document counts, bytes per part, split and filter rules). When no source is installed, throws
// hsa::Error naming the folders looked in and the apt-get command that installs the packages.
FillerCorpusReport prepare_filler_corpus(const FillerCorpusOptions& options);

}  // namespace hsa::data

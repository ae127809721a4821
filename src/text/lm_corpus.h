// `hsa data corpus`: the plain-text corpus the language model is trained on, assembled from the Debian
// packages of text/lm_corpus_sources.h and split by document into a training and an evaluation part.
//
// Pipeline: per source, read documents (one paragraph per line) -> clean each line (ascii_line; is_prose with
// one word and no sentence end required; looks_like_needle lines dropped, like the filler, so the synthetic
// tasks' needles never occur in natural text) -> drop boilerplate (is_boilerplate: license headers, footers,
// navigation menus, stock attributions). Then over all sources, in source order and id order: drop a document that is an exact copy of
// an earlier one, then every paragraph of kDedupChars or more characters already seen earlier (shorter lines,
// headings and list items, may repeat), then documents left empty. Finally split by is_eval_document(id).
//
// Output files: each document's lines joined by '\n', then a line holding only kEndOfText; the tokenizer maps
// that line to its end-of-text token, so documents are separated by it after tokenization.
#pragma once
#include "text/lm_corpus_sources.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

namespace hsa::data {

inline constexpr std::string_view kEndOfText = "<|endoftext|>";
constexpr int kBoilerplateWords = 6;
constexpr size_t kDedupChars = 40;
constexpr int kBoilerplateShortShare = 4;

// Whether a cleaned line found in `documents_with_line` of the source's `documents` documents is boilerplate:
// it is in kBoilerplateDocuments or more, and either has kBoilerplateWords or more words (license text, stock
// sentences) or is in at least 1/kBoilerplateShortShare of them and not all capitals (menus and footers such
// as "Download" or "Created using Sphinx"; the capital section headings of manual pages stay).
bool is_boilerplate(std::string_view line, int64_t documents_with_line, int64_t documents);

// Cleans one source's documents as described above (line filters and the source's boilerplate); keeps
// documents that end up empty (dedup_documents drops them).
std::vector<FillerDocument> clean_lm_documents(std::vector<FillerDocument> raw);

// Exact-document and repeated-paragraph deduplication across all sources, as described above.
class CorpusDedup {
 public:
  // Removes the repeated paragraphs of `doc`; false when the whole document is a copy of an earlier one or
  // nothing is left of it.
  bool keep(FillerDocument& doc);
  int64_t duplicate_documents = 0, duplicate_paragraphs = 0;

 private:
  std::unordered_set<uint64_t> documents_, paragraphs_;
};

// A document as written to the output files: its lines, each followed by '\n', then kEndOfText and '\n'.
std::string lm_document_text(const FillerDocument& doc);

struct LmCorpusOptions {
  std::filesystem::path root = "/";  // where the packages are installed (tests pass a fake tree)
  std::filesystem::path out_dir = "data";
  int eval_percent = 6;  // ~5.5 MB: more than 1M tokens, so a 1M-token window of held-out text fits
};

struct LmSourceReport {
  LmSource source;
  std::vector<std::pair<std::string, std::string>> versions;  // package, version ("" when not installed)
  bool installed = false;
  int64_t documents_read = 0;               // documents the converter gave
  int64_t documents = 0, bytes = 0;         // kept after cleaning and deduplication (both parts)
  int64_t eval_documents = 0, eval_bytes = 0;
  double seconds = 0;
};

struct LmPartReport {
  std::string path;
  int64_t documents = 0, bytes = 0;
};

struct LmCorpusReport {
  std::vector<LmSourceReport> sources;
  LmPartReport train, eval;
  int64_t duplicate_documents = 0, duplicate_paragraphs = 0;
  std::string manifest_path;
};

// Reads every installed source (calling on_source after each, for progress), writes <out_dir>/lm-train.txt,
// lm-eval.txt and manifest.json (each only when its content changed, so an unchanged file keeps its time) (sources with package versions, counts per source and part, the filter, dedup
// and split rules). Throws hsa::Error naming the packages when none is installed or either part is empty.
LmCorpusReport prepare_lm_corpus(const LmCorpusOptions& options,
                                 const std::function<void(const LmSourceReport&)>& on_source = {});

}  // namespace hsa::data

// Where the filler corpus comes from: text in Debian documentation packages that a fresh machine can install
// (fortunes + fortunes-min, debian-reference-en, python3-doc), read as documents of raw text lines.
#pragma once
#include "text/prose.h"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace hsa::data {

struct FillerSource {
  std::string name;                        // "fortunes", "debian-reference", "python-doc": prefix of document ids
  std::vector<std::string> packages;       // Debian packages that install it
  std::vector<std::string> looked_in;      // folders looked in (python3.* as a pattern), for messages
  std::filesystem::path dir;               // the folder found; empty when the source is not installed
  ProseRule rule;                          // which lines count as prose in this source
};

struct FillerDocument {
  std::string id;                  // "<source>/<path relative to the source folder>[#<n>]": the split key
  std::vector<std::string> lines;  // text lines (raw after read_filler_documents, cleaned after cleaning)
};

// Every known source, installed or not, looked up under `root` ("/" normally; tests pass a fake tree).
std::vector<FillerSource> find_filler_sources(const std::filesystem::path& root);

// The documents of an installed source, ordered by id: one per fortune (fortunes), one per HTML page
// (debian-reference: *.en.html; python-doc: every *.html outside folders starting with '_'), HTML turned into
// text lines with html_to_text. Unreadable files throw hsa::Error naming the file.
std::vector<FillerDocument> read_filler_documents(const FillerSource& source);

// The lines of `text` split at '\n' (a final line without '\n' included, no empty line after a final '\n').
std::vector<std::string> split_lines(std::string_view text);

// One document per HTML page under `dir` whose name ends with `suffix` (recursive: also in subfolders, except
// those starting with '_', Sphinx's assets and duplicates), id "<source>/<path relative to dir>", the text
// from html_to_text, ordered by id.
std::vector<FillerDocument> read_html_pages(const std::string& source, const std::filesystem::path& dir,
                                            bool recursive, std::string_view suffix);

}  // namespace hsa::data

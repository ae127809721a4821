#include "text/lm_corpus_sources.h"

#include "text/dict_text.h"
#include "text/dpkg_packages.h"
#include "text/html_text.h"
#include "text/pod_text.h"
#include "text/rst_text.h"
#include "text/troff_text.h"
#include "util/file_util.h"
#include "util/gzip_file.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>

namespace hsa::data {
namespace fs = std::filesystem;
namespace {

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

std::string without_gz(std::string s) {
  if (ends_with(s, ".gz")) s.resize(s.size() - 3);
  return s;
}

bool installed(const LmSource& source, const fs::path& root) {
  const std::map<std::string, std::string> versions = installed_package_versions(root);
  return std::all_of(source.packages.begin(), source.packages.end(),
                     [&](const std::string& p) { return versions.count(p) > 0; });
}

std::vector<fs::path> files_of(const LmSource& source, const fs::path& root) {
  std::vector<fs::path> out;
  for (const std::string& p : source.packages) {
    std::vector<fs::path> files = package_files(root, p);
    out.insert(out.end(), files.begin(), files.end());
  }
  return out;
}

void sort_by_id(std::vector<FillerDocument>& docs) {
  std::sort(docs.begin(), docs.end(), [](const FillerDocument& a, const FillerDocument& b) { return a.id < b.id; });
}

// One document per file accepted by `keep`, its id "<source>/<id_of(path)>", its text from `convert`.
template <typename Keep, typename Id, typename Convert>
std::vector<FillerDocument> per_file(const LmSource& source, const fs::path& root, Keep keep, Id id_of,
                                     Convert convert) {
  std::vector<FillerDocument> docs;
  for (const fs::path& file : files_of(source, root)) {
    const std::string path = file.generic_string();
    if (!keep(path)) continue;
    docs.push_back({source.name + "/" + id_of(file), split_lines(convert(read_file_gunzip(path)))});
  }
  sort_by_id(docs);
  return docs;
}

// Dictionary entries grouped into documents by the first two letters or digits of their headword.
std::string group_key(std::string_view word) {
  std::string key;
  for (char c : word) {
    if (std::isalnum(static_cast<unsigned char>(c))) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (key.size() == 2) break;
  }
  return key.empty() ? "_" : key;
}

std::vector<FillerDocument> read_dictd(const LmSource& source, const fs::path& root) {
  fs::path index, dict;
  for (const fs::path& f : files_of(source, root)) {
    const std::string name = f.filename().string();
    if (ends_with(name, ".index")) index = f;
    if (ends_with(name, ".dict.dz") || ends_with(name, ".dict")) dict = f;
  }
  HSA_CHECK(!index.empty() && !dict.empty(), "data corpus: {} has no dictd .index and .dict(.dz) file",
            fmt::join(source.packages, " "));
  std::map<std::string, FillerDocument> groups;
  for (const DictEntry& e : dictd_entries(hsa::read_file(index.string()), read_file_gunzip(dict.string()))) {
    FillerDocument& doc = groups[group_key(e.headword)];
    for (std::string& line : split_lines(dict_entry_text(e.text))) doc.lines.push_back(std::move(line));
  }
  std::vector<FillerDocument> docs;
  for (auto& [key, doc] : groups) {
    doc.id = source.name + "/" + key;
    docs.push_back(std::move(doc));
  }
  return docs;
}

std::vector<FillerDocument> read_wordnet(const LmSource& source, const fs::path& root) {
  std::map<std::string, FillerDocument> groups;
  for (const fs::path& f : files_of(source, root)) {
    const std::string name = f.filename().string();
    if (name.rfind("data.", 0) != 0) continue;
    const std::string pos = name.substr(5);
    for (const std::string& line : split_lines(read_file_gunzip(f.string()))) {
      std::optional<WordnetSynset> s = wordnet_synset(line);
      if (!s) continue;
      const std::string key = fmt::format("{}/{:02}/{}", pos, s->lexfile, group_key(s->words).substr(0, 1));
      groups[key].lines.push_back(std::move(s->text));
    }
  }
  std::vector<FillerDocument> docs;
  for (auto& [key, doc] : groups) {
    doc.id = source.name + "/" + key;
    docs.push_back(std::move(doc));
  }
  return docs;
}

std::vector<FillerDocument> read_filler_source(const LmSource& source, const fs::path& root) {
  for (const FillerSource& f : find_filler_sources(root))
    if (f.name == source.name && !f.dir.empty()) return read_filler_documents(f);
  return {};
}

}  // namespace

const std::vector<LmSource>& lm_sources() {
  static const std::vector<LmSource> sources = {
      {"fortunes", {"fortunes", "fortunes-min"}, "fortunes", "one quotation", ""},
      {"debian-reference", {"debian-reference-en"}, "html", "one HTML page", ""},
      {"python-doc", {"python3-doc"}, "html", "one HTML page", ""},
      {"postgresql-doc", {"postgresql-doc-15"}, "html", "one HTML page", "/usr/share/doc/postgresql-doc-15/html/"},
      {"django-doc", {"python-django-doc"}, "html", "one HTML page", "/usr/share/doc/python-django-doc/html/"},
      {"sphinx-doc", {"sphinx-doc"}, "html", "one HTML page", "/usr/share/doc/sphinx-doc/html/"},
      {"sqlite-doc", {"sqlite3-doc"}, "html", "one HTML page", "/usr/share/doc/sqlite3/"},
      {"git-doc", {"git-doc"}, "html", "one HTML page", "/usr/share/doc/git-doc/"},
      {"nodejs-doc", {"nodejs-doc"}, "html", "one HTML page", "/usr/share/doc/nodejs/api/"},
      {"debian-handbook", {"debian-handbook"}, "html", "one HTML page (English)",
       "/usr/share/doc/debian-handbook/html/en-US/"},
      {"debian-policy", {"debian-policy"}, "html", "one HTML page", "/usr/share/doc/debian-policy/"},
      {"apache-doc", {"apache2-doc"}, "html", "one HTML page (English)", "/usr/share/doc/apache2-doc/manual/en/"},
      {"octave-doc", {"octave-doc"}, "html", "one HTML page", "/usr/share/doc/octave/octave.html/",
       "XREF"},
      {"maxima-doc", {"maxima-doc"}, "html", "one HTML page", "/usr/share/doc/maxima-doc/html/"},
      {"r-manuals", {"r-doc-html"}, "html", "one HTML manual", "/usr/share/R/doc/manual/"},
      {"developers-reference", {"developers-reference"}, "html", "one HTML page", "/usr/share/developers-reference/"},
      {"linux-doc", {"linux-doc-6.1"}, "rst", "one Documentation/*.rst file (translations left out)", ""},
      {"perl-doc", {"perl-doc"}, "pod", "one *.pod file", ""},
      {"manpages", {"manpages", "manpages-dev"}, "man", "one manual page", ""},
      {"gcide", {"dict-gcide"}, "dictd", "the entries whose headword starts with the same two letters", ""},
      {"foldoc", {"dict-foldoc"}, "dictd", "the entries whose headword starts with the same two letters", ""},
      {"jargon", {"dict-jargon"}, "dictd", "the entries whose headword starts with the same two letters", ""},
      {"devils-dictionary", {"dict-devil"}, "dictd", "the entries whose headword starts with the same two letters", ""},
      {"wordnet", {"wordnet-base"}, "wordnet",
       "the synsets of one part of speech, lexicographer file and first letter", ""},
  };
  return sources;
}

std::vector<FillerDocument> read_lm_source(const LmSource& source, const fs::path& root) {
  if (!installed(source, root)) return {};
  if (source.format == "fortunes") return read_filler_source(source, root);
  if (source.format == "html" && source.under.empty()) return read_filler_source(source, root);
  if (source.format == "html")
    return per_file(
        source, root,
        [&](const std::string& p) {
          const size_t at = p.find(source.under);
          // Folders starting with '_' hold Sphinx's assets, module sources and duplicates of the pages.
          const std::string name = fs::path(p).filename().string();
          if (!source.skip_prefix.empty() && name.rfind(source.skip_prefix, 0) == 0) return false;
          return at != std::string::npos && p.find("/_", at) == std::string::npos &&
                 (ends_with(p, ".html") || ends_with(p, ".html.gz"));
        },
        [&](const fs::path& f) {
          const std::string p = f.generic_string();
          return without_gz(p.substr(p.find(source.under) + source.under.size()));
        },
        [](const std::string& text) { return html_to_text(text); });
  if (source.format == "rst")
    return per_file(
        source, root,
        [](const std::string& p) {
          return p.find("/Documentation/") != std::string::npos && p.find("/translations/") == std::string::npos &&
                 (ends_with(p, ".rst") || ends_with(p, ".rst.gz"));
        },
        [](const fs::path& f) {
          const std::string p = f.generic_string();
          return without_gz(p.substr(p.find("/Documentation/") + 15));
        },
        [](const std::string& text) { return rst_to_text(text); });
  if (source.format == "pod")
    return per_file(
        source, root, [](const std::string& p) { return ends_with(p, ".pod") || ends_with(p, ".pod.gz"); },
        [](const fs::path& f) { return without_gz(f.filename().string()); },
        [](const std::string& text) { return pod_to_text(text); });
  if (source.format == "man")
    return per_file(
        source, root,
        [](const std::string& p) { return p.find("/usr/share/man/man") != std::string::npos; },
        [](const fs::path& f) {
          return f.parent_path().filename().string() + "/" + without_gz(f.filename().string());
        },
        [](const std::string& text) { return man_to_text(text); });
  if (source.format == "dictd") return read_dictd(source, root);
  if (source.format == "wordnet") return read_wordnet(source, root);
  fail("data corpus: source {} has unknown format {}", source.name, source.format);
}

}  // namespace hsa::data

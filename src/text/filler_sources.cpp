#include "text/filler_sources.h"

#include "text/fortunes.h"
#include "text/html_text.h"
#include "util/file_util.h"

#include <hsa/error.h>

#include <algorithm>

namespace hsa::data {
namespace fs = std::filesystem;
namespace {

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// The first candidate folder that exists, or "".
fs::path first_existing(const std::vector<fs::path>& candidates) {
  for (const fs::path& p : candidates) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) return fs::canonical(p);
  }
  return {};
}

// Python's HTML docs live in python3.<minor>/html; python3-doc links to the installed version's folder.
std::vector<fs::path> python_doc_candidates(const fs::path& root) {
  std::vector<fs::path> out = {root / "usr/share/doc/python3-doc/html", root / "usr/share/doc/python3/html"};
  std::vector<fs::path> versioned;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(root / "usr/share/doc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("python3.", 0) == 0 && name.find("-doc") == std::string::npos)
      versioned.push_back(e.path() / "html");
  }
  std::sort(versioned.rbegin(), versioned.rend());
  out.insert(out.end(), versioned.begin(), versioned.end());
  return out;
}

std::vector<FillerDocument> read_fortunes(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    // The *.dat indexes and the *.u8 links to the same text are skipped: only plain files without a dot.
    if (!e.is_regular_file() || e.is_symlink()) continue;
    if (e.path().filename().string().find('.') != std::string::npos) continue;
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<FillerDocument> docs;
  for (const fs::path& file : files) {
    std::vector<std::string> fortunes = split_fortunes(hsa::read_file(file.string()));
    for (size_t i = 0; i < fortunes.size(); ++i)
      docs.push_back({fmt::format("fortunes/{}#{}", file.filename().string(), i + 1), split_lines(fortunes[i])});
  }
  return docs;
}

}  // namespace

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  size_t from = 0;
  while (from < text.size()) {
    size_t end = text.find('\n', from);
    if (end == std::string_view::npos) end = text.size();
    lines.emplace_back(text.substr(from, end - from));
    from = end + 1;
  }
  return lines;
}

std::vector<FillerDocument> read_html_pages(const std::string& source, const fs::path& dir, bool recursive,
                                            std::string_view suffix) {
  std::vector<fs::path> files;
  auto consider = [&](const fs::directory_entry& e) {
    if (e.is_regular_file() && ends_with(e.path().filename().string(), suffix)) files.push_back(e.path());
  };
  if (recursive) {
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_directory() && it->path().filename().string().rfind('_', 0) == 0) {
        it.disable_recursion_pending();  // Sphinx's _static, _sources, _downloads: assets and duplicates
        continue;
      }
      consider(*it);
    }
  } else {
    for (const fs::directory_entry& e : fs::directory_iterator(dir)) consider(e);
  }
  std::vector<FillerDocument> docs;
  for (const fs::path& file : files) {
    const std::string id = source + "/" + fs::relative(file, dir).generic_string();
    docs.push_back({id, split_lines(html_to_text(hsa::read_file(file.string())))});
  }
  std::sort(docs.begin(), docs.end(), [](const FillerDocument& a, const FillerDocument& b) { return a.id < b.id; });
  return docs;
}

std::vector<FillerSource> find_filler_sources(const fs::path& root) {
  // Fortunes are short and often verse: every line with words counts. Documentation pages also hold
  // headings, menus and fragments: only sentence-like paragraphs of 6 or more words count.
  const ProseRule verse{.min_words = 1, .sentence_end = false};
  const ProseRule paragraphs{.min_words = 6, .sentence_end = true};
  auto shown = [](std::vector<fs::path> paths) {
    std::vector<std::string> out;
    for (const fs::path& p : paths) out.push_back(p.lexically_normal().string());
    return out;
  };
  const fs::path fortunes = root / "usr/share/games/fortunes", reference = root / "usr/share/debian-reference";
  const fs::path doc = root / "usr/share/doc";
  return {
      {"fortunes", {"fortunes", "fortunes-min"}, shown({fortunes}), first_existing({fortunes}), verse},
      {"debian-reference", {"debian-reference-en"}, shown({reference}), first_existing({reference}), paragraphs},
      {"python-doc", {"python3-doc"}, shown({doc / "python3-doc/html", doc / "python3/html", doc / "python3.*/html"}),
       first_existing(python_doc_candidates(root)), paragraphs},
  };
}

std::vector<FillerDocument> read_filler_documents(const FillerSource& source) {
  HSA_CHECK(!source.dir.empty(), "data filler: source {} is not installed", source.name);
  if (source.name == "fortunes") return read_fortunes(source.dir);
  if (source.name == "debian-reference") return read_html_pages(source.name, source.dir, false, ".en.html");
  if (source.name == "python-doc") return read_html_pages(source.name, source.dir, true, ".html");
  fail("data filler: unknown source {}", source.name);
}

}  // namespace hsa::data

#include "text/filler_corpus.h"

#include "text/needle_filter.h"
#include "util/file_util.h"

#include <hsa/error.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iterator>
#include <unordered_map>
#include <unordered_set>

namespace hsa::data {
namespace fs = std::filesystem;

uint64_t text_hash(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  h ^= h >> 30;  // splitmix64 finaliser: spreads FNV's weak low bits before the modulo
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

namespace {

std::string joined(const FillerDocument& doc) {
  std::string s;
  for (const std::string& line : doc.lines) (s += line) += '\n';
  return s;
}

FillerPartReport part_report(const fs::path& path, const std::vector<FillerDocument>& docs, size_t bytes) {
  FillerPartReport r{path.string(), static_cast<int64_t>(docs.size()), 0, static_cast<int64_t>(bytes)};
  for (const FillerDocument& d : docs) r.lines += static_cast<int64_t>(d.lines.size());
  return r;
}

std::string missing_sources_message(const std::vector<FillerSource>& sources) {
  std::vector<std::string> folders, packages;
  for (const FillerSource& s : sources) {
    folders.insert(folders.end(), s.looked_in.begin(), s.looked_in.end());
    packages.insert(packages.end(), s.packages.begin(), s.packages.end());
  }
  return fmt::format(
      "data filler: no text source is installed (looked in {}); install the Debian packages with\n"
      "  apt-get install -y --no-install-recommends {}\n"
      "or run tools/prepare-data, which installs them and prepares the data",
      fmt::join(folders, ", "), fmt::join(packages, " "));
}

nlohmann::json manifest(const FillerCorpusReport& r, int eval_percent) {
  nlohmann::json sources = nlohmann::json::array();
  for (const FillerSourceReport& s : r.sources)
    sources.push_back({{"name", s.source.name},
                       {"packages", s.source.packages},
                       {"installed", !s.source.dir.empty()},
                       {"folder", s.source.dir.string()},
                       {"documents", s.documents},
                       {"bytes", s.bytes}});
  auto part = [](const FillerPartReport& p) {
    return nlohmann::json{{"file", fs::path(p.path).filename().string()},
                          {"documents", p.documents},
                          {"lines", p.lines},
                          {"bytes", p.bytes}};
  };
  return {{"sources", sources},
          {"train", part(r.train)},
          {"eval", part(r.eval)},
          {"eval_percent", eval_percent},
          {"split_rule",
           fmt::format("document id = <source>/<path in the source folder>[#<fortune number>]; evaluation when "
                       "splitmix64(fnv1a64(id)) % 100 < {}, else training; exact duplicate documents kept once "
                       "(first id); evaluation lines that also occur in training dropped",
                       eval_percent)},
          {"filter_rule",
           fmt::format("lines kept when ASCII after mapping typographic UTF-8, letters >= 60% of non-space "
                       "characters, code symbols <= 5%, HTML paragraphs >= 6 words ending like a sentence; dropped "
                       "when holding 'pass key', 'passkey', 'special magic', 'magic number', 'magic uuid', 'VAR ' "
                       "or 5+ consecutive digits, or when found in >= {} documents of a source (boilerplate)",
                       kBoilerplateDocuments)}};
}

}  // namespace

bool is_eval_document(std::string_view id, int eval_percent) {
  return static_cast<int>(text_hash(id) % 100) < eval_percent;
}

std::vector<FillerDocument> clean_filler_documents(std::vector<FillerDocument> raw, const ProseRule& rule) {
  for (FillerDocument& doc : raw) {
    std::vector<std::string> kept;
    for (const std::string& line : doc.lines) {
      std::optional<std::string> clean = ascii_line(line);
      if (clean && is_prose(*clean, rule) && !looks_like_needle(*clean)) kept.push_back(std::move(*clean));
    }
    doc.lines = std::move(kept);
  }
  std::unordered_map<std::string, int> documents_with;  // line -> number of documents holding it
  for (const FillerDocument& doc : raw) {
    std::unordered_set<std::string_view> seen(doc.lines.begin(), doc.lines.end());
    for (std::string_view line : seen) ++documents_with[std::string(line)];
  }
  std::vector<FillerDocument> out;
  for (FillerDocument& doc : raw) {
    std::erase_if(doc.lines, [&](const std::string& line) { return documents_with[line] >= kBoilerplateDocuments; });
    if (!doc.lines.empty()) out.push_back(std::move(doc));
  }
  return out;
}

FillerSplit split_filler_documents(std::vector<FillerDocument> docs, int eval_percent) {
  HSA_CHECK(eval_percent >= 1 && eval_percent <= 99, "data filler: eval percent must be in [1, 99], got {}",
            eval_percent);
  std::sort(docs.begin(), docs.end(), [](const FillerDocument& a, const FillerDocument& b) { return a.id < b.id; });
  FillerSplit split;
  std::unordered_set<std::string> texts;
  for (FillerDocument& doc : docs) {
    if (!texts.insert(joined(doc)).second) continue;  // an exact copy of an earlier document
    (is_eval_document(doc.id, eval_percent) ? split.eval : split.train).push_back(std::move(doc));
  }
  std::unordered_set<std::string_view> train_lines;
  for (const FillerDocument& doc : split.train) train_lines.insert(doc.lines.begin(), doc.lines.end());
  std::vector<FillerDocument> eval;
  for (FillerDocument& doc : split.eval) {
    std::erase_if(doc.lines, [&](const std::string& line) { return train_lines.count(line) > 0; });
    if (!doc.lines.empty()) eval.push_back(std::move(doc));
  }
  split.eval = std::move(eval);
  return split;
}

std::string filler_text(const std::vector<FillerDocument>& docs) {
  std::string out;
  for (size_t i = 0; i < docs.size(); ++i) {
    if (i) out += '\n';
    out += joined(docs[i]);
  }
  return out;
}

FillerCorpusReport prepare_filler_corpus(const FillerCorpusOptions& o) {
  std::vector<FillerSource> sources = find_filler_sources(o.root);
  const bool any = std::any_of(sources.begin(), sources.end(), [](const FillerSource& s) { return !s.dir.empty(); });
  if (!any) throw Error(missing_sources_message(sources));

  FillerCorpusReport report;
  std::vector<FillerDocument> all;
  for (const FillerSource& source : sources) {
    FillerSourceReport sr{source};
    if (!source.dir.empty()) {
      std::vector<FillerDocument> docs = clean_filler_documents(read_filler_documents(source), source.rule);
      sr.documents = static_cast<int64_t>(docs.size());
      for (const FillerDocument& d : docs) sr.bytes += static_cast<int64_t>(joined(d).size());
      std::move(docs.begin(), docs.end(), std::back_inserter(all));
    }
    report.sources.push_back(std::move(sr));
  }
  FillerSplit split = split_filler_documents(std::move(all), o.eval_percent);
  fs::create_directories(o.out_dir);
  const fs::path train_path = o.out_dir / "filler-train.txt", eval_path = o.out_dir / "filler-eval.txt";
  const std::string train_text = filler_text(split.train), eval_text = filler_text(split.eval);
  HSA_CHECK(!train_text.empty() && !eval_text.empty(),
            "data filler: the installed sources gave too little text to split ({} training and {} evaluation "
            "bytes); install more of the packages",
            train_text.size(), eval_text.size());
  write_file_atomic(train_path.string(), train_text);
  write_file_atomic(eval_path.string(), eval_text);
  report.train = part_report(train_path, split.train, train_text.size());
  report.eval = part_report(eval_path, split.eval, eval_text.size());
  report.manifest_path = (o.out_dir / "filler-manifest.json").string();
  write_file_atomic(report.manifest_path, manifest(report, o.eval_percent).dump(2) + "\n");
  return report;
}

}  // namespace hsa::data

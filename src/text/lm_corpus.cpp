#include "text/lm_corpus.h"

#include "text/dpkg_packages.h"
#include "text/filler_corpus.h"
#include "text/needle_filter.h"
#include "text/prose.h"
#include "util/file_util.h"

#include <hsa/error.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <unordered_map>

namespace hsa::data {
namespace fs = std::filesystem;
namespace {

int words(std::string_view line) {
  int n = 0;
  bool in_word = false;
  for (char c : line) {
    const bool space = c == ' ';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

// Writes only when the content differs, so an unchanged corpus keeps its time stamp and the steps after it
// (tokenizer training, shards) see nothing new.
void write_if_changed(const std::string& path, const std::string& text) {
  std::error_code ec;
  if (fs::exists(path, ec) && fs::file_size(path, ec) == text.size() && hsa::read_file(path) == text) return;
  write_file_atomic(path, text);
}

bool all_capitals(std::string_view line) {
  return std::none_of(line.begin(), line.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

std::string rules(int eval_percent) {
  return fmt::format(
      "filter: lines kept when ASCII after mapping typographic UTF-8, letters >= 60% of non-space characters and "
      "code symbols <= 5%; dropped when holding 'pass key', 'passkey', 'special magic', 'magic number', 'magic "
      "uuid', 'VAR ', 5+ consecutive digits or '{}'. boilerplate: a line found in >= {} documents of its source "
      "is dropped from all of them when it has >= {} words, or when it is in >= 1/{} of the source's documents and "
      "not all capitals (manual section headings stay). dedup (sources in manifest order, documents in id order): a "
      "document identical to an earlier one is dropped, then every line of >= {} characters seen earlier. split: "
      "document id = <source>/<name>; evaluation when splitmix64(fnv1a64(id)) % 100 < {}, else training",
      kEndOfText, kBoilerplateDocuments, kBoilerplateWords, kBoilerplateShortShare, kDedupChars, eval_percent);
}

nlohmann::json manifest(const LmCorpusReport& r, int eval_percent) {
  nlohmann::json sources = nlohmann::json::array();
  for (const LmSourceReport& s : r.sources) {
    nlohmann::json packages = nlohmann::json::object();
    for (const auto& [p, v] : s.versions) packages[p] = v.empty() ? nlohmann::json(nullptr) : nlohmann::json(v);
    sources.push_back({{"name", s.source.name},
                       {"packages", packages},
                       {"format", s.source.format},
                       {"document", s.source.documents},
                       {"installed", s.installed},
                       {"documents_read", s.documents_read},
                       {"documents", s.documents},
                       {"bytes", s.bytes},
                       {"eval_documents", s.eval_documents},
                       {"eval_bytes", s.eval_bytes}});
  }
  auto part = [](const LmPartReport& p) {
    return nlohmann::json{{"file", fs::path(p.path).filename().string()}, {"documents", p.documents}, {"bytes", p.bytes}};
  };
  return {{"sources", sources},
          {"train", part(r.train)},
          {"eval", part(r.eval)},
          {"eval_percent", eval_percent},
          {"document_separator", fmt::format("a line holding only {} after each document", kEndOfText)},
          {"duplicate_documents_dropped", r.duplicate_documents},
          {"duplicate_lines_dropped", r.duplicate_paragraphs},
          {"rules", rules(eval_percent)}};
}

}  // namespace

bool is_boilerplate(std::string_view line, int64_t documents_with_line, int64_t documents) {
  if (documents_with_line < kBoilerplateDocuments) return false;
  if (words(line) >= kBoilerplateWords) return true;
  return documents_with_line * kBoilerplateShortShare >= documents && !all_capitals(line);
}

std::vector<FillerDocument> clean_lm_documents(std::vector<FillerDocument> raw) {
  const ProseRule any_line{.min_words = 1, .sentence_end = false};
  std::unordered_map<uint64_t, int> documents_with;  // line -> documents of the source holding it
  for (FillerDocument& doc : raw) {
    std::vector<std::string> kept;
    std::unordered_set<uint64_t> seen;
    for (const std::string& line : doc.lines) {
      std::optional<std::string> clean = ascii_line(line);
      if (!clean || !is_prose(*clean, any_line) || looks_like_needle(*clean)) continue;
      if (clean->find(kEndOfText) != std::string::npos) continue;
      if (seen.insert(text_hash(*clean)).second) ++documents_with[text_hash(*clean)];
      kept.push_back(std::move(*clean));
    }
    doc.lines = std::move(kept);
  }
  const int64_t documents = static_cast<int64_t>(raw.size());
  for (FillerDocument& doc : raw)
    std::erase_if(doc.lines, [&](const std::string& line) { return is_boilerplate(line, documents_with[text_hash(line)], documents); });
  return raw;
}

bool CorpusDedup::keep(FillerDocument& doc) {
  std::string whole;
  for (const std::string& line : doc.lines) (whole += line) += '\n';
  if (whole.empty()) return false;
  if (!documents_.insert(text_hash(whole)).second) {
    ++duplicate_documents;
    return false;
  }
  const size_t before = doc.lines.size();
  std::erase_if(doc.lines, [&](const std::string& line) {
    return line.size() >= kDedupChars && !paragraphs_.insert(text_hash(line)).second;
  });
  duplicate_paragraphs += static_cast<int64_t>(before - doc.lines.size());
  return !doc.lines.empty();
}

std::string lm_document_text(const FillerDocument& doc) {
  std::string out;
  for (const std::string& line : doc.lines) (out += line) += '\n';
  (out += kEndOfText) += '\n';
  return out;
}

LmCorpusReport prepare_lm_corpus(const LmCorpusOptions& o,
                                 const std::function<void(const LmSourceReport&)>& on_source) {
  HSA_CHECK(o.eval_percent >= 1 && o.eval_percent <= 99, "data corpus: --eval-percent must be in [1, 99], got {}",
            o.eval_percent);
  const std::map<std::string, std::string> versions = installed_package_versions(o.root);
  LmCorpusReport report;
  CorpusDedup dedup;
  std::string train, eval;
  for (const LmSource& source : lm_sources()) {
    const auto t0 = std::chrono::steady_clock::now();
    LmSourceReport sr;
    sr.source = source;
    sr.installed = true;
    for (const std::string& p : source.packages) {
      auto it = versions.find(p);
      sr.versions.emplace_back(p, it == versions.end() ? "" : it->second);
      sr.installed = sr.installed && it != versions.end();
    }
    if (sr.installed) {
      std::vector<FillerDocument> docs = read_lm_source(source, o.root);
      sr.documents_read = static_cast<int64_t>(docs.size());
      for (FillerDocument& doc : clean_lm_documents(std::move(docs))) {
        if (!dedup.keep(doc)) continue;
        const std::string text = lm_document_text(doc);
        const bool is_eval = is_eval_document(doc.id, o.eval_percent);
        (is_eval ? eval : train) += text;
        LmPartReport& part = is_eval ? report.eval : report.train;
        ++part.documents;
        part.bytes += static_cast<int64_t>(text.size());
        ++sr.documents;
        sr.bytes += static_cast<int64_t>(text.size());
        if (is_eval) ++sr.eval_documents, sr.eval_bytes += static_cast<int64_t>(text.size());
      }
    }
    sr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_source) on_source(sr);
    report.sources.push_back(std::move(sr));
  }
  if (report.train.documents == 0 && report.eval.documents == 0) {
    std::vector<std::string> packages;
    for (const LmSource& s : lm_sources()) packages.insert(packages.end(), s.packages.begin(), s.packages.end());
    fail("data corpus: no text source is installed under {}; install the Debian packages with\n"
         "  apt-get install -y --no-install-recommends {}\nor run tools/prepare-data, which installs them",
         o.root.string(), fmt::join(packages, " "));
  }
  HSA_CHECK(report.train.documents > 0 && report.eval.documents > 0,
            "data corpus: the installed sources gave too little text to split ({} training and {} evaluation "
            "documents); install more of the packages",
            report.train.documents, report.eval.documents);
  report.duplicate_documents = dedup.duplicate_documents;
  report.duplicate_paragraphs = dedup.duplicate_paragraphs;
  fs::create_directories(o.out_dir);
  report.train.path = (o.out_dir / "lm-train.txt").string();
  report.eval.path = (o.out_dir / "lm-eval.txt").string();
  write_if_changed(report.train.path, train);
  write_if_changed(report.eval.path, eval);
  report.manifest_path = (o.out_dir / "manifest.json").string();
  write_if_changed(report.manifest_path, manifest(report, o.eval_percent).dump(2) + "\n");
  return report;
}

}  // namespace hsa::data

#include "text/filler_corpus.h"

#include "common/error_text.h"
#include "common/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

using namespace hsa::data;
using hsa::testing::error_of;
using hsa::testing::has;
using hsa::testing::TempDir;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// n documents "src/doc<i>" of two unique lines each; every tenth also holds a line shared with its neighbour.
std::vector<FillerDocument> documents(int n) {
  std::vector<FillerDocument> docs;
  for (int i = 0; i < n; ++i) {
    const std::string n = std::to_string(i);
    FillerDocument d{"src/doc" + n, {"first line of " + n, "second of " + n}};
    if (i % 10 == 0) d.lines.push_back("shared by " + std::to_string(i / 20));
    docs.push_back(d);
  }
  return docs;
}

std::set<std::string> ids(const std::vector<FillerDocument>& docs) {
  std::set<std::string> out;
  for (const FillerDocument& d : docs) out.insert(d.id);
  return out;
}

std::set<std::string> lines(const std::vector<FillerDocument>& docs) {
  std::set<std::string> out;
  for (const FillerDocument& d : docs) out.insert(d.lines.begin(), d.lines.end());
  return out;
}

}  // namespace

TEST(FillerSplit, DisjointByDocumentAndLineAndRoughlyTheAskedShare) {
  const FillerSplit split = split_filler_documents(documents(1000), 10);
  const std::set<std::string> train = ids(split.train), eval = ids(split.eval);
  for (const std::string& id : eval) EXPECT_EQ(train.count(id), 0u) << id;
  const std::set<std::string> train_lines = lines(split.train);
  for (const std::string& line : lines(split.eval)) EXPECT_EQ(train_lines.count(line), 0u) << line;
  EXPECT_EQ(train.size() + eval.size(), 1000u);  // no document lost entirely (each has unique lines)
  EXPECT_GT(eval.size(), 60u);
  EXPECT_LT(eval.size(), 140u);
  for (const std::string& id : eval) EXPECT_TRUE(is_eval_document(id, 10)) << id;
  for (const std::string& id : train) EXPECT_FALSE(is_eval_document(id, 10)) << id;
}

TEST(FillerSplit, DeterministicAndIndependentOfInputOrder) {
  std::vector<FillerDocument> docs = documents(300);
  const FillerSplit a = split_filler_documents(docs, 10);
  std::reverse(docs.begin(), docs.end());
  const FillerSplit b = split_filler_documents(docs, 10);
  EXPECT_EQ(filler_text(a.train), filler_text(b.train));
  EXPECT_EQ(filler_text(a.eval), filler_text(b.eval));
  // Pinned: the split rule must not change silently between versions (it would move documents between the
  // parts of an existing data folder, and evaluation text into training).
  std::vector<int> eval_numbers;
  for (int i = 0; i < 100; ++i)
    if (is_eval_document("fortunes/wisdom#" + std::to_string(i), 10)) eval_numbers.push_back(i);
  EXPECT_EQ(eval_numbers, (std::vector<int>{12, 35, 43, 47, 48, 51, 55, 86, 88}));
}

TEST(FillerSplit, DuplicateDocumentsAreKeptOnce) {
  std::vector<FillerDocument> docs = {{"b/2", {"same text"}}, {"a/1", {"same text"}}, {"c/3", {"other text"}}};
  const FillerSplit split = split_filler_documents(docs, 50);
  std::set<std::string> all = ids(split.train);
  for (const std::string& id : ids(split.eval)) all.insert(id);
  EXPECT_EQ(all, (std::set<std::string>{"a/1", "c/3"}));  // the first id wins
  EXPECT_TRUE(has(error_of([&] { split_filler_documents(docs, 0); }), "eval percent must be in [1, 99], got 0"));
}

TEST(CleanFillerDocuments, DropsNeedlesCodeNonAsciiAndBoilerplate) {
  std::vector<FillerDocument> raw;
  for (int i = 0; i < 5; ++i)
    raw.push_back({"p/" + std::to_string(i),
                   {"Page " + std::to_string(i) + " explains one idea in plain and simple words.",
                    "This page is licensed under the same terms as every page.",  // in 5 documents: boilerplate
                    "x = {'a': [1, 2]}  # code",
                    "The pass key to the building is kept at the front desk.",
                    "It was installed on 2023-01-15 and has 123456 users in total.",
                    "Caf\xC3\xA9 au lait is served all day long, every day."}});
  raw.push_back({"p/empty", {"short", "  "}});
  const std::vector<FillerDocument> clean =
      clean_filler_documents(raw, ProseRule{.min_words = 6, .sentence_end = true});
  ASSERT_EQ(clean.size(), 5u);  // p/empty has no prose left and is dropped
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(clean[i].id, "p/" + std::to_string(i));
    EXPECT_EQ(clean[i].lines, std::vector<std::string>{"Page " + std::to_string(i) +
                                                       " explains one idea in plain and simple words."});
  }
}

TEST(PrepareFillerCorpus, MissingSourcesErrorNamesFoldersAndPackages) {
  TempDir dir;
  FillerCorpusOptions o;
  o.root = dir.path / "root";
  o.out_dir = dir.path / "out";
  const std::string msg = error_of([&] { prepare_filler_corpus(o); });
  EXPECT_TRUE(has(msg, "no text source is installed")) << msg;
  EXPECT_TRUE(has(msg, (o.root / "usr/share/games/fortunes").string())) << msg;
  EXPECT_TRUE(has(msg, "apt-get install -y --no-install-recommends fortunes fortunes-min debian-reference-en "
                       "python3-doc"))
      << msg;
  EXPECT_TRUE(has(msg, "tools/prepare-data")) << msg;
  EXPECT_FALSE(fs::exists(o.out_dir / "filler-train.txt"));
}

TEST(PrepareFillerCorpus, ReadsAFakePackageTreeIntoTwoDisjointParts) {
  TempDir dir;
  const fs::path root = dir.path / "root";
  std::string fortunes;
  for (int i = 0; i < 80; ++i) fortunes += "Fortune number " + std::string(1, static_cast<char>('a' + i % 26)) +
                                            std::to_string(i) + " says something wise.\n%\n";
  write(root / "usr/share/games/fortunes/wisdom", fortunes);
  write(root / "usr/share/games/fortunes/wisdom.dat", "binary index");
  fs::create_symlink("wisdom", root / "usr/share/games/fortunes/wisdom.u8");  // same text: read once
  write(root / "usr/share/debian-reference/ch01.en.html",
        "<html><body><p>The Debian system is a collection of packages that work well together.</p>"
        "<pre>$ sudo apt install foo</pre></body></html>");
  write(root / "usr/share/debian-reference/ch01.de.html", "<p>Das ist nicht Englisch und wird nicht gelesen.</p>");
  const fs::path html = root / "usr/share/doc/python3.11/html";
  write(html / "tutorial/intro.html", "<p>Python is an easy to learn and powerful programming language.</p>");
  write(html / "_static/skip.html", "<p>This page is an asset and must never be read as prose.</p>");

  FillerCorpusOptions o;
  o.root = root;
  o.out_dir = dir.path / "out";
  const FillerCorpusReport r = prepare_filler_corpus(o);
  ASSERT_EQ(r.sources.size(), 3u);
  EXPECT_EQ(r.sources[0].documents, 80);
  EXPECT_EQ(r.sources[1].documents, 1);
  EXPECT_EQ(r.sources[2].documents, 1);
  EXPECT_EQ(r.train.documents + r.eval.documents, 82);
  EXPECT_GT(r.eval.documents, 0);

  const std::string train = read(o.out_dir / "filler-train.txt"), eval = read(o.out_dir / "filler-eval.txt");
  EXPECT_EQ(static_cast<int64_t>(train.size()), r.train.bytes);
  EXPECT_EQ(static_cast<int64_t>(eval.size()), r.eval.bytes);
  const std::string both = train + eval;
  EXPECT_TRUE(has(both, "The Debian system is a collection of packages that work well together.\n"));
  EXPECT_TRUE(has(both, "Python is an easy to learn and powerful programming language.\n"));
  EXPECT_FALSE(has(both, "apt install"));
  EXPECT_FALSE(has(both, "Englisch"));
  EXPECT_FALSE(has(both, "asset"));
  for (int i = 0; i < 80; ++i) {
    const std::string line = "Fortune number " + std::string(1, static_cast<char>('a' + i % 26)) + std::to_string(i);
    EXPECT_NE(has(train, line), has(eval, line)) << line;  // in exactly one part
  }

  const nlohmann::json m = nlohmann::json::parse(read(o.out_dir / "filler-manifest.json"));
  EXPECT_EQ(m["train"]["documents"], r.train.documents);
  EXPECT_EQ(m["eval"]["bytes"], r.eval.bytes);
  EXPECT_EQ(m["sources"][0]["name"], "fortunes");
  EXPECT_EQ(m["sources"][0]["documents"], 80);
  EXPECT_EQ(m["sources"][2]["installed"], true);
  EXPECT_TRUE(has(m["split_rule"].get<std::string>(), "% 100 < 10"));
}

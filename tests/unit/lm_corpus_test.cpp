#include "text/lm_corpus.h"

#include "text/dpkg_packages.h"
#include "text/filler_corpus.h"
#include "util/gzip_file.h"

#include <hsa/error.h>

#include "common/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <chrono>
#include <fstream>
#include <set>

using namespace hsa::data;
using hsa::testing::TempDir;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

void write_gz(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  gzclose(f);
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string status_record(const std::string& package, const std::string& version, bool installed = true) {
  return "Package: " + package + "\nStatus: install ok " + (installed ? "installed" : "config-files") +
         "\nVersion: " + version + "\n\n";
}

// Documents of a corpus file: the text between the end-of-text lines.
std::vector<std::string> documents_of(const std::string& text) {
  std::vector<std::string> out;
  const std::string sep = std::string("\n") + std::string(kEndOfText) + "\n";
  size_t from = 0;
  for (size_t at; (at = text.find(sep, from)) != std::string::npos; from = at + sep.size())
    out.push_back(text.substr(from, at - from + 1));
  EXPECT_EQ(from, text.size()) << "text after the last separator";
  return out;
}

}  // namespace

TEST(GzipFile, ReadsCompressedAndPlainFiles) {
  TempDir dir;
  write_gz(dir.path / "a.gz", "compressed text\n");
  write(dir.path / "b", "plain text\n");
  EXPECT_EQ(hsa::read_file_gunzip((dir.path / "a.gz").string()), "compressed text\n");
  EXPECT_EQ(hsa::read_file_gunzip((dir.path / "b").string()), "plain text\n");
  EXPECT_THROW(hsa::read_file_gunzip((dir.path / "missing").string()), hsa::Error);
}

TEST(DpkgPackages, VersionsOfInstalledPackagesAndTheirFiles) {
  TempDir dir;
  write(dir.path / "var/lib/dpkg/status",
        status_record("alpha", "1.0") + status_record("removed", "2.0", false) + status_record("beta", "3:4-5"));
  write(dir.path / "usr/share/alpha/b.txt", "b");
  write(dir.path / "usr/share/alpha/a.txt", "a");
  write(dir.path / "var/lib/dpkg/info/alpha.list", "/.\n/usr\n/usr/share/alpha\n/usr/share/alpha/b.txt\n"
                                                   "/usr/share/alpha/a.txt\n/usr/share/alpha/gone.txt\n");
  write(dir.path / "var/lib/dpkg/info/beta:amd64.list", "/usr/share/alpha/a.txt\n");
  const auto versions = installed_package_versions(dir.path);
  EXPECT_EQ(versions, (std::map<std::string, std::string>{{"alpha", "1.0"}, {"beta", "3:4-5"}}));
  EXPECT_EQ(package_files(dir.path, "alpha"),
            (std::vector<fs::path>{dir.path / "usr/share/alpha/a.txt", dir.path / "usr/share/alpha/b.txt"}));
  EXPECT_EQ(package_files(dir.path, "beta"), (std::vector<fs::path>{dir.path / "usr/share/alpha/a.txt"}));
  EXPECT_TRUE(package_files(dir.path, "removed").empty());
}

TEST(CleanLmDocuments, DropsNeedlesNonAsciiCodeAndBoilerplateKeepsShortRepeatedLines) {
  const std::string license = "Permission is hereby granted to copy this file freely.";
  std::vector<FillerDocument> docs;
  for (int i = 0; i < 5; ++i)
    docs.push_back({"src/" + std::to_string(i),
                    {"NAME", license, "Document number " + std::string(1, static_cast<char>('a' + i)) + " says hello.",
                     "The pass key is here.", "call 1234567 now", "x = {a[0]} + $b;", "caf\xc3\xa9 \xe4\xb8\xad"}});
  docs.push_back({"src/other", {license, "Only four documents share it elsewhere."}});
  const std::vector<FillerDocument> clean = clean_lm_documents(docs);
  ASSERT_EQ(clean.size(), 6u);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(clean[i].lines,
              (std::vector<std::string>{"NAME", "Document number " + std::string(1, static_cast<char>('a' + i)) +
                                                    " says hello."}));
  EXPECT_EQ(clean[5].lines, (std::vector<std::string>{"Only four documents share it elsewhere."}));
}

TEST(CorpusDedup, ExactDocumentsAndLongRepeatedLinesOnceShortLinesAlways) {
  CorpusDedup dedup;
  const std::string long_line = "This sentence is long enough to be deduplicated everywhere.";
  FillerDocument a{"s/a", {"Heading", long_line, "Unique text of a."}};
  FillerDocument a_copy = a;
  a_copy.id = "s/copy";
  FillerDocument b{"s/b", {"Heading", long_line, "Unique text of b."}};
  FillerDocument c{"s/c", {long_line}};
  EXPECT_TRUE(dedup.keep(a));
  EXPECT_EQ(a.lines.size(), 3u);
  EXPECT_FALSE(dedup.keep(a_copy));
  EXPECT_TRUE(dedup.keep(b));
  EXPECT_EQ(b.lines, (std::vector<std::string>{"Heading", "Unique text of b."}));
  EXPECT_FALSE(dedup.keep(c));  // nothing left
  EXPECT_EQ(dedup.duplicate_documents, 1);
  EXPECT_EQ(dedup.duplicate_paragraphs, 2);
}

TEST(LmDocumentText, LinesThenEndOfTextLine) {
  EXPECT_EQ(lm_document_text({"s/a", {"one", "two"}}), "one\ntwo\n<|endoftext|>\n");
}

TEST(LmSplitRule, DeterministicAndAboutTheAskedShare) {
  int eval = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string id = "src/doc" + std::to_string(i);
    const bool e = is_eval_document(id, 2);
    EXPECT_EQ(e, is_eval_document(id, 2));
    eval += e;
  }
  EXPECT_GT(eval, 300);  // 2% of 20000 = 400
  EXPECT_LT(eval, 500);
}

TEST(PrepareLmCorpus, FakeTreeSplitsByIdWritesSeparatorsAndManifest) {
  TempDir dir;
  const fs::path root = dir.path / "root";
  write(root / "var/lib/dpkg/status", status_record("fortunes", "1:1.99") + status_record("fortunes-min", "1:1.99") +
                                          status_record("manpages", "6.03") + status_record("manpages-dev", "6.03"));
  std::string fortunes;
  for (int i = 0; i < 400; ++i) fortunes += "Fortune number " + std::to_string(i) + " is unique.\n%\n";
  fortunes += "The special magic number hides here.\n%\n";
  write(root / "usr/share/games/fortunes/sayings", fortunes);
  write_gz(root / "usr/share/man/man1/tool.1.gz", ".TH TOOL 1\n.SH NAME\ntool \\- does things\n");
  write(root / "usr/share/man/man2/call.2", ".SH DESCRIPTION\nThe\n.B call\nworks.\n");
  write(root / "var/lib/dpkg/info/manpages.list", "/usr/share/man/man1/tool.1.gz\n");
  write(root / "var/lib/dpkg/info/manpages-dev.list", "/usr/share/man/man2/call.2\n");

  LmCorpusOptions o;
  o.root = root;
  o.out_dir = dir.path / "out";
  o.eval_percent = 10;
  std::vector<std::string> progress;
  const LmCorpusReport r = prepare_lm_corpus(o, [&](const LmSourceReport& s) { progress.push_back(s.source.name); });
  EXPECT_EQ(progress.size(), lm_sources().size());

  const std::vector<std::string> train = documents_of(read(o.out_dir / "lm-train.txt"));
  const std::vector<std::string> eval = documents_of(read(o.out_dir / "lm-eval.txt"));
  EXPECT_EQ(static_cast<int64_t>(train.size()), r.train.documents);
  EXPECT_EQ(static_cast<int64_t>(eval.size()), r.eval.documents);
  EXPECT_EQ(train.size() + eval.size(), 402u);  // 400 fortunes (the needle one dropped) and 2 man pages
  // Each fortune lands in the part its id picks, and no document is in both parts.
  std::set<std::string> eval_set(eval.begin(), eval.end());
  for (int i = 0; i < 400; ++i) {
    const std::string text = "Fortune number " + std::to_string(i) + " is unique.\n";
    const bool want_eval = is_eval_document("fortunes/sayings#" + std::to_string(i + 1), 10);
    EXPECT_EQ(eval_set.count(text), want_eval ? 1u : 0u) << i;
  }
  for (const std::string& d : train) EXPECT_EQ(eval_set.count(d), 0u);
  std::set<std::string> all(train.begin(), train.end());
  all.insert(eval.begin(), eval.end());
  EXPECT_EQ(all.count("NAME\ntool - does things\n"), 1u);
  EXPECT_EQ(all.count("DESCRIPTION\nThe call works.\n"), 1u);

  const nlohmann::json m = nlohmann::json::parse(read(o.out_dir / "manifest.json"));
  bool saw_manpages = false;
  for (const auto& s : m["sources"]) {
    if (s["name"] == "manpages") {
      saw_manpages = true;
      EXPECT_EQ(s["packages"]["manpages"], "6.03");
      EXPECT_EQ(s["documents"], 2);
    }
    if (s["name"] == "gcide") EXPECT_FALSE(s["installed"].get<bool>());
  }
  EXPECT_TRUE(saw_manpages);
  EXPECT_EQ(m["train"]["documents"], r.train.documents);
  EXPECT_EQ(m["eval_percent"], 10);

  // A rerun over the same packages leaves the files untouched (the tokenizer step after it sees nothing new).
  const fs::path train_path = o.out_dir / "lm-train.txt";
  const auto old_time = fs::file_time_type::clock::now() - std::chrono::hours(1);
  fs::last_write_time(train_path, old_time);
  prepare_lm_corpus(o);
  EXPECT_EQ(fs::last_write_time(train_path), old_time);
}

TEST(PrepareLmCorpus, NothingInstalledNamesThePackages) {
  TempDir dir;
  LmCorpusOptions o;
  o.root = dir.path;
  o.out_dir = dir.path / "out";
  try {
    prepare_lm_corpus(o);
    FAIL() << "expected an error";
  } catch (const hsa::Error& e) {
    EXPECT_NE(std::string(e.what()).find("dict-gcide"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(o.out_dir / "lm-train.txt"));
}

TEST(IsBoilerplate, LongRepeatedLinesAndFrequentShortOnesExceptCapitalHeadings) {
  const std::string sentence = "Permission is hereby granted to copy this file.";
  EXPECT_FALSE(is_boilerplate(sentence, kBoilerplateDocuments - 1, 1000));
  EXPECT_TRUE(is_boilerplate(sentence, kBoilerplateDocuments, 1000));
  EXPECT_FALSE(is_boilerplate("Download", 100, 1000));  // short and in 10% of the documents
  EXPECT_TRUE(is_boilerplate("Download", 250, 1000));   // short and in a quarter of them
  EXPECT_FALSE(is_boilerplate("SEE ALSO", 900, 1000));  // a manual section heading
  EXPECT_FALSE(is_boilerplate("Download", kBoilerplateDocuments - 1, kBoilerplateDocuments - 1));
}

// hsa data: build token shards from text files, inspect synthetic task samples, prepare natural filler text.
//   hsa data build --input a.txt b.txt --output train.bin [--tokenizer data/tokenizer.json] [--doc-separator LINE]
//   hsa data sample --task passkey --length 512 --seed 1 [--prompt-only] [--filler corpus.txt]
//   hsa data filler -o data   (natural filler text from installed Debian documentation packages)
//   hsa data corpus -o data   (the language-model corpus: lm-train.txt, lm-eval.txt, manifest.json)
#include "cli/command.h"
#include "cli/validators.h"
#include "text/filler_corpus.h"
#include "text/filler.h"
#include "text/lm_corpus.h"
#include "text/tasks.h"
#include "text/token_shard.h"
#include "text/text_chunks.h"
#include "text/tokenizer.h"
#include "util/progress.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

namespace {

struct BuildOptions {
  std::vector<std::string> inputs;
  std::string output;
  std::string tokenizer = "bytes";
  std::string doc_separator;  // a line that separates documents; empty: one document per file
  bool force = false;
};

struct SampleOptions {
  std::string task = "passkey";
  int64_t length = 512;
  uint64_t seed = 1;
  bool prompt_only = false;
  std::string filler_path;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HSA_CHECK(in.good(), "data: cannot read {}", path);
  std::ostringstream text;
  text << in.rdbuf();
  HSA_CHECK(!in.bad(), "data: reading {} failed", path);
  return std::move(text).str();
}

// Outputs already there are someone's work (an earlier run, or a user's own file of that name): a command
// replaces them only with --force.
void refuse_existing_outputs(const char* command, std::initializer_list<std::filesystem::path> outputs, bool force) {
  if (force) return;
  for (const std::filesystem::path& path : outputs)
    if (std::filesystem::exists(path))
      hsa::fail_argument("data {}: the output '{}' exists; give --force to replace it", command, path.string());
}

// Each document becomes bos + its tokens, so document boundaries stay visible to the model (for our BPE
// tokenizers bos is <|endoftext|>, the usual separator). The text streams through in pieces cut where the
// tokenizer would cut anyway (text/text_chunks.h), so memory stays bounded whatever the input size.
int run_build(const BuildOptions& o) {
  // Checked before reading anything: an output that is one of the inputs would be destroyed by the write.
  std::error_code ec;
  for (const std::string& path : o.inputs)
    if (std::filesystem::equivalent(path, o.output, ec))
      hsa::fail_argument("data build: the output '{}' is the input '{}'", o.output, path);
  refuse_existing_outputs("build", {o.output}, o.force);
  std::unique_ptr<hsa::Tokenizer> tok = hsa::load_tokenizer(o.tokenizer, "");
  hsa::TokenShardWriter writer(o.output, tok->vocab_size() <= 65536 ? 2 : 4);
  HSA_CHECK(tok->bos_id() >= 0, "data build: tokenizer {} has no bos token to start documents with", o.tokenizer);
  const std::vector<int32_t> bos = {tok->bos_id()};
  const auto encode = [&](std::string_view text) { writer.append(tok->encode(text)); };
  constexpr size_t kChunkBytes = 4 << 20;
  int64_t total = 0, done_before = 0, documents = 0;
  for (const std::string& path : o.inputs) total += static_cast<int64_t>(std::filesystem::file_size(path));
  hsa::Progress progress("data build", total, "B");
  const auto report = [&](int64_t read) {
    progress.update(done_before + read, fmt::format("{} documents, {} tokens", documents, writer.size()));
  };
  for (const std::string& path : o.inputs) {
    if (o.doc_separator.empty()) {
      writer.append(bos);
      ++documents;
      hsa::for_each_file_chunk(path, kChunkBytes, encode, report);
    } else {
      std::ifstream in(path, std::ios::binary);
      HSA_CHECK(in.good(), "data build: cannot read {}", path);
      hsa::TextChunker chunker(kChunkBytes, encode);
      bool in_document = false;
      int64_t read = 0, reported = 0;
      for (std::string line; std::getline(in, line);) {
        read += static_cast<int64_t>(line.size()) + 1;
        if (line == o.doc_separator) {
          chunker.flush();
          in_document = false;
          continue;
        }
        if (!in_document) {
          writer.append(bos);
          ++documents;
          in_document = true;
        }
        line.push_back('\n');
        chunker.push(line);
        if (read - reported >= (1 << 20)) report(reported = read);
      }
      HSA_CHECK(!in.bad(), "data build: reading {} failed", path);
      chunker.flush();
    }
    done_before += static_cast<int64_t>(std::filesystem::file_size(path));
  }
  writer.finish();
  progress.finish(fmt::format("{} documents", documents));
  fmt::print("{} tokens ({} documents, tokenizer {}) from {} file(s) written to {}\n", writer.size(), documents,
             tok->name(), o.inputs.size(), o.output);
  return 0;
}

std::string megabytes(int64_t bytes) { return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6); }

int run_filler(const hsa::data::FillerCorpusOptions& o, bool force) {
  refuse_existing_outputs("filler",
                          {o.out_dir / "filler-train.txt", o.out_dir / "filler-eval.txt", o.out_dir / "filler-manifest.json"},
                          force);
  hsa::data::FillerCorpusReport r = hsa::data::prepare_filler_corpus(o);
  for (const hsa::data::FillerSourceReport& s : r.sources) {
    if (s.source.dir.empty())
      fmt::print("{:<17} not installed (apt-get install {})\n", s.source.name, fmt::join(s.source.packages, " "));
    else
      fmt::print("{:<17} {:>6} documents  {:>8}  {}\n", s.source.name, s.documents, megabytes(s.bytes),
                 s.source.dir.string());
  }
  for (const hsa::data::FillerPartReport* p : {&r.train, &r.eval})
    fmt::print("wrote {}: {} documents, {} lines, {}\n", p->path, p->documents, p->lines, megabytes(p->bytes));
  fmt::print("wrote {}\n", r.manifest_path);
  return 0;
}

int run_corpus(const hsa::data::LmCorpusOptions& o, bool force) {
  refuse_existing_outputs("corpus", {o.out_dir / "lm-train.txt", o.out_dir / "lm-eval.txt", o.out_dir / "manifest.json"},
                          force);
  fmt::print("{:<18} {:>8} {:>9} {:>9} {:>7}  {}\n", "source", "docs", "size", "eval", "seconds", "packages");
  hsa::data::LmCorpusReport r = hsa::data::prepare_lm_corpus(o, [](const hsa::data::LmSourceReport& s) {
    std::vector<std::string> packages;
    for (const auto& [p, v] : s.versions) packages.push_back(v.empty() ? p + " (not installed)" : p + " " + v);
    if (!s.installed)
      fmt::print("{:<18} {:>8} {:>9} {:>9} {:>7}  {}\n", s.source.name, "-", "-", "-", "-", fmt::join(packages, ", "));
    else
      fmt::print("{:<18} {:>8} {:>9} {:>9} {:>7.1f}  {}\n", s.source.name, s.documents, megabytes(s.bytes),
                 megabytes(s.eval_bytes), s.seconds, fmt::join(packages, ", "));
    std::fflush(stdout);
  });
  fmt::print("dropped {} duplicate documents and {} repeated lines\n", r.duplicate_documents, r.duplicate_paragraphs);
  for (const hsa::data::LmPartReport* p : {&r.train, &r.eval})
    fmt::print("wrote {}: {} documents, {}\n", p->path, p->documents, megabytes(p->bytes));
  fmt::print("wrote {}\n", r.manifest_path);
  return 0;
}

// Printable form of a piece of text for the abbreviated view: line breaks shown as "\n".
std::string escaped(std::string_view s) {
  std::string out;
  for (char c : s) out += c == '\n' ? std::string("\\n") : std::string(1, c);
  return out;
}

int run_sample(const SampleOptions& o) {
  hsa::TaskKind kind = hsa::parse_task_kind(o.task);
  std::unique_ptr<hsa::FillerText> filler = o.filler_path.empty()
                                                ? std::make_unique<hsa::FillerText>()
                                                : std::make_unique<hsa::FillerText>(read_file(o.filler_path));
  hsa::TaskSample s = hsa::make_task_sample(kind, o.length, o.seed, *filler);
  hsa::ByteTokenizer tok;
  std::span<const int32_t> ids(s.tokens);
  std::string prompt = tok.decode(ids.subspan(1, static_cast<size_t>(s.prompt_length - 1)));  // without bos
  if (o.prompt_only) {
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::fflush(stdout);
    std::fprintf(stderr, "answer: %s\n", s.answer.c_str());
    return 0;
  }
  fmt::print("task {}  length {} tokens  seed {}  prompt {} tokens  answer {} tokens\n", hsa::task_kind_name(kind),
             s.tokens.size(), o.seed, s.prompt_length, s.answer.size());
  constexpr size_t kHead = 240, kTail = 240;
  if (prompt.size() <= kHead + kTail) {
    fmt::print("<bos>{}\n", escaped(prompt));
  } else {
    fmt::print("<bos>{} [... {} bytes ...] {}\n", escaped(prompt.substr(0, kHead)), prompt.size() - kHead - kTail,
               escaped(prompt.substr(prompt.size() - kTail)));
  }
  fmt::print("answer: {}\n", s.answer);
  return 0;
}

hsa::cli::Command data_command("data", "token shards, synthetic task samples, natural filler text, the LM corpus", [](CLI::App& app) {
  app.require_subcommand(1);
  auto build = std::make_shared<BuildOptions>();
  CLI::App* build_cmd = app.add_subcommand("build", "tokenize text files (bos before each document) into one token shard");
  build_cmd->add_option("-i,--input", build->inputs, "text file(s)")->required()->check(CLI::ExistingFile);
  build_cmd->add_option("-o,--output", build->output, "token shard to write")->required();
  build_cmd->add_option("--tokenizer", build->tokenizer, "\"bytes\" or a tokenizer.json (from `hsa tokenizer train`)")
      ->capture_default_str();
  build_cmd->add_option("--doc-separator", build->doc_separator,
                        "a line (exactly, e.g. '<|endoftext|>' or '---') that separates documents inside a file "
                        "(the line itself is dropped); default: each file is one document");
  build_cmd->add_flag("--force", build->force, "replace the output if it exists");

  auto sample = std::make_shared<SampleOptions>();
  CLI::App* sample_cmd = app.add_subcommand("sample", "print one synthetic retrieval task sample");
  sample_cmd->add_option("-t,--task", sample->task, "passkey, multikey_niah or variable_tracking")
      ->capture_default_str();
  sample_cmd->add_option("-n,--length", sample->length, "total tokens, bos and answer included")
      ->check(hsa::cli::positive_number())
      ->capture_default_str();
  sample_cmd->add_option("-s,--seed", sample->seed, "sample seed")->check(hsa::cli::non_negative_number())->capture_default_str();
  sample_cmd->add_flag("--prompt-only", sample->prompt_only,
                       "print exactly the prompt (no bos, no answer) to stdout and 'answer: ...' to stderr");
  sample_cmd->add_option("--filler", sample->filler_path, "text corpus for the haystack (default: built-in)")
      ->check(CLI::ExistingFile);

  auto filler = std::make_shared<hsa::data::FillerCorpusOptions>();
  CLI::App* filler_cmd = app.add_subcommand(
      "filler",
      "natural English text from Debian documentation packages, as filler-train.txt and filler-eval.txt (no shared "
      "document or line) and filler-manifest.json");
  filler_cmd->add_option("-o,--out", filler->out_dir, "output folder")->capture_default_str();
  filler_cmd->add_option("--eval-percent", filler->eval_percent, "share of documents for evaluation (1-99)")
      ->capture_default_str();
  filler_cmd->add_option("--root", filler->root, "folder the packages are installed under")->capture_default_str();
  auto force = std::make_shared<bool>(false);
  filler_cmd->add_flag("--force", *force, "replace filler-train.txt, filler-eval.txt and filler-manifest.json in --out");
  filler_cmd->footer(
      "\nLines that hold a task phrase ('pass key', 'special magic', 'magic number', 'VAR ', ...) or 5+ "
      "consecutive digits are dropped, so the synthetic tasks' needles and answers never occur in the filler.\n"
      "Train on it as natural text with: hsa data build -i data/filler-train.txt -o data/filler-train.bin\n");

  auto corpus = std::make_shared<hsa::data::LmCorpusOptions>();
  CLI::App* corpus_cmd = app.add_subcommand(
      "corpus",
      "the language-model corpus: English prose and documentation from Debian packages as lm-train.txt and "
      "lm-eval.txt (no shared document) and manifest.json");
  corpus_cmd->add_option("-o,--out", corpus->out_dir, "output folder")->capture_default_str();
  corpus_cmd->add_option("--eval-percent", corpus->eval_percent, "share of documents for evaluation (1-99)")
      ->capture_default_str();
  corpus_cmd->add_option("--root", corpus->root, "folder the packages are installed under")->capture_default_str();
  corpus_cmd->add_flag("--force", *force, "replace lm-train.txt, lm-eval.txt and manifest.json in --out");
  corpus_cmd->footer(
      "\nEach document is written as its text (one paragraph per line) followed by a line holding only "
      "<|endoftext|>, the tokenizer's end-of-text token, so documents are separated by it after tokenization.\n"
      "Documents are cleaned (ASCII prose lines; lines with a task phrase such as 'pass key', 'special magic', "
      "'VAR ' or 5+ consecutive digits dropped), deduplicated (exact documents, repeated lines of 40+ "
      "characters, boilerplate) and split by a hash of their id; manifest.json records the packages, counts "
      "and rules. tools/prepare-data installs the packages and runs this, then trains the tokenizer and "
      "writes the token shards.\n");

  return [build, sample, filler, corpus, force, build_cmd, sample_cmd, filler_cmd, corpus_cmd] {
    if (build_cmd->parsed()) return run_build(*build);
    if (sample_cmd->parsed()) return run_sample(*sample);
    if (filler_cmd->parsed()) return run_filler(*filler, *force);
    if (corpus_cmd->parsed()) return run_corpus(*corpus, *force);
    throw hsa::Error("data: give a subcommand: build, sample, filler or corpus");
  };
});

}  // namespace

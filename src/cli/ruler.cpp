// hsa ruler: RULER-style long-context evaluation (synthetic tasks, no external data). Runs every task at every
// length, prefilling each prompt in segments and decoding greedily; writes a markdown table, a JSON record of
// every sample, an SVG plot of accuracy against length and, when gnuplot is installed, the same plot as PNG.
#include "cli/command.h"
#include "cli/validators.h"
#include "cli/placement_options.h"
#include "eval/ruler.h"
#include "eval/ruler_log.h"
#include "eval/ruler_report.h"
#include "model/placement.h"
#include "infer/greedy.h"
#include "model/checkpoint.h"
#include "util/file_util.h"
#include "util/progress.h"
#include "text/tokenizer.h"
#include "train/trainer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>

namespace {

using hsa::eval::RulerTask;

struct RulerOptions {
  std::string model;
  std::string tasks = "all";
  std::vector<int64_t> lengths = {1024, 4096};
  int64_t samples = 10;
  int64_t max_new_tokens = 64;
  int64_t segment = 4096;
  uint64_t seed = 42;
  std::string out = "ruler-out";
  std::string show;  // print one sample of this task and exit (no model needed)
  std::string filler;  // text corpus for the essay-like haystacks (built-in generator when empty)
  std::string device = "cpu", dtype;
  std::vector<std::string> merge;  // ruler.json files of earlier runs to combine into one report
  bool resume = false;  // continue the run recorded in out/ruler.jsonl, skipping its finished samples
  bool force = false;   // replace an earlier run's report in out
};

// An earlier run's results in --out are replaced only when the user says so.
void check_ruler_output(const RulerOptions& o, bool merging) {
  const std::filesystem::path dir(o.out);
  if (o.resume && o.force) hsa::fail_argument("ruler: --resume continues a run and --force replaces it; give one");
  if (o.resume || o.force) return;
  for (const char* name : {"ruler.json", "ruler.jsonl", "ruler.md"})
    if (std::filesystem::exists(dir / name))
      hsa::fail_argument("ruler: '{}' already holds a report ({}); {}give --force to replace it", o.out, name,
                         merging ? "" : "continue that run with --resume, or ");
}

// Writes the report; when that fails the samples are safe in ruler.jsonl, and the message says how to finish.
void write_report_or_explain(const std::filesystem::path& dir, const hsa::eval::RulerReport& report) {
  try {
    hsa::eval::write_ruler_report(dir, report);
  } catch (const hsa::Error& e) {
    hsa::fail("{} (every sample is recorded in {}; rerun with --resume to write the report)", e.what(),
              (dir / "ruler.jsonl").string());
  }
}

int run_ruler(const RulerOptions& o) {
  if (o.show.empty()) check_ruler_output(o, !o.merge.empty());
  if (!o.merge.empty()) {
    hsa::eval::RulerReport merged = hsa::eval::merge_ruler_reports(o.merge);
    merged.meta["commands"].push_back(hsa::cli::command_line());
    std::filesystem::create_directories(o.out);
    hsa::eval::write_ruler_report(o.out, merged);
    return 0;
  }
  const std::vector<RulerTask> tasks = hsa::eval::parse_ruler_task_list(o.tasks);
  for (size_t i = 0; i < tasks.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (tasks[i] == tasks[j])
        hsa::fail_argument("ruler: --tasks names {} twice", hsa::eval::ruler_task_name(tasks[i]));
  if (o.lengths.empty()) hsa::fail_argument("ruler: no --lengths given");
  for (size_t i = 1; i < o.lengths.size(); ++i)
    if (o.lengths[i] <= o.lengths[i - 1])
      hsa::fail_argument("ruler: --lengths must be increasing, got {} after {}", o.lengths[i], o.lengths[i - 1]);
  const hsa::FillerText filler = o.filler.empty() ? hsa::FillerText() : hsa::FillerText(hsa::read_file(o.filler));
  // Lengths count the model's tokens: its config names the tokenizer (bytes without a model, for --show).
  std::unique_ptr<hsa::Tokenizer> tokenizer = std::make_unique<hsa::ByteTokenizer>();
  std::string checkpoint_dir;
  if (!o.model.empty()) {
    checkpoint_dir = hsa::resolve_checkpoint_dir(o.model);
    tokenizer = hsa::load_tokenizer(hsa::ModelConfig::from_file(checkpoint_dir + "/config.json").tokenizer,
                                    checkpoint_dir);
  }
  const hsa::Tokenizer& tok = *tokenizer;
  if (!o.show.empty()) {
    RulerTask task = hsa::eval::parse_ruler_task(o.show);
    const int64_t length = o.lengths.front();
    hsa::eval::RulerSample s = hsa::eval::make_ruler_sample(
        task, length, hsa::eval::ruler_sample_seed(o.seed, task, length, 0), filler, tok);
    fmt::print("{}\n---\n{} tokens ({}); expected: {}\n", s.prompt, s.tokens(tok).size(), tok.name(),
               fmt::join(s.expected, " | "));
    return 0;
  }
  HSA_CHECK(!o.model.empty(), "ruler: give a model with -m (or --show TASK to print a sample)");
  // A length too short for a task is a rejected value: find it now, before the model loads or anything is written.
  for (RulerTask task : tasks)
    for (int64_t length : o.lengths) {
      try {
        hsa::eval::make_ruler_sample(task, length, hsa::eval::ruler_sample_seed(o.seed, task, length, 0), filler, tok);
      } catch (const hsa::Error& e) {
        hsa::fail_argument("{} (--lengths)", e.what());
      }
    }
  hsa::Checkpoint ck = hsa::load_checkpoint(checkpoint_dir);
  const hsa::Placement place = hsa::resolve_placement(o.device, o.dtype);
  hsa::Model model = hsa::place_model(ck, place);
  const std::filesystem::path dir(o.out);
  std::filesystem::create_directories(dir);
  // What decides each sample's prompt and answer: a resumed run must match it to reuse its records.
  const nlohmann::json run{{"model", o.model},
                           {"seed", o.seed},
                           {"max_new_tokens", o.max_new_tokens},
                           {"filler", o.filler.empty() ? "built-in" : o.filler}};
  hsa::eval::RulerLog log((dir / "ruler.jsonl").string(), run, o.resume);
  if (log.resumed() > 0) fmt::print(stderr, "resuming: {} samples already recorded in {}\n", log.resumed(),
                                    (dir / "ruler.jsonl").string());

  const int64_t total = static_cast<int64_t>(tasks.size() * o.lengths.size()) * o.samples;
  hsa::Progress progress("ruler", total, "sample", 5.0);
  int64_t done_samples = 0;
  std::vector<std::vector<double>> acc(tasks.size(), std::vector<double>(o.lengths.size(), 0.0));
  nlohmann::json records = nlohmann::json::array();
  nlohmann::json per_length = nlohmann::json::array();
  const auto t_start = std::chrono::steady_clock::now();
  for (size_t li = 0; li < o.lengths.size(); ++li) {
    const int64_t length = o.lengths[li];
    const auto t_length = std::chrono::steady_clock::now();
    for (size_t ti = 0; ti < tasks.size(); ++ti) {
      const RulerTask task = tasks[ti];
      const std::string name = hsa::eval::ruler_task_name(task);
      std::vector<double> scores;
      for (int64_t s = 0; s < o.samples; ++s) {
        const uint64_t seed = hsa::eval::ruler_sample_seed(o.seed, task, length, s);
        if (const nlohmann::json* done = log.find(name, length, s, seed)) {
          scores.push_back((*done)["score"].get<double>());
          records.push_back(*done);
          progress.update(++done_samples,
                          fmt::format("{} @ {}: {:.0f}% so far", name, length, hsa::eval::ruler_accuracy(scores)));
          continue;
        }
        hsa::eval::RulerSample sample = hsa::eval::make_ruler_sample(task, length, seed, filler, tok);
        std::vector<int32_t> ids = sample.tokens(tok);
        const hsa::GreedyAnswer greedy = hsa::answer_greedily(model, ids, o.max_new_tokens, o.segment, tok.eos_id());
        const double prefill_s = greedy.prefill_s, decode_s = greedy.decode_s;
        const std::string answer = tok.decode(greedy.tokens);
        const double score = hsa::eval::ruler_score(sample.expected, answer);
        scores.push_back(score);
        nlohmann::json record{{"task", name},
                           {"length", length},
                           {"sample", s},
                           {"seed", seed},
                           {"prompt_tokens", ids.size()},
                           {"expected", sample.expected},
                           {"output", answer},
                           {"score", score},
                           {"prefill_s", prefill_s},
                           {"decode_s", decode_s}};
        log.append(record);
        records.push_back(std::move(record));
        progress.update(++done_samples,
                        fmt::format("{} @ {}: {:.0f}% so far", name, length, hsa::eval::ruler_accuracy(scores)));
      }
      acc[ti][li] = hsa::eval::ruler_accuracy(scores);
    }
    per_length.push_back({{"length", length}, {"samples", o.samples}, {"wall_s", hsa::seconds_since(t_length)}});
  }
  progress.finish();
  hsa::eval::RulerReport report;
  report.meta = {{"model", o.model},
                 {"device", place.description},
                 {"dtype", hsa::dtype_name(place.dtype)},
                 {"seed", o.seed},
                 {"max_new_tokens", o.max_new_tokens},
                 {"filler", o.filler.empty() ? "built-in" : o.filler},
                 {"tokenizer", tok.name()},
                 {"commands", {hsa::cli::command_line()}}};
  report.tasks = tasks;
  report.lengths = o.lengths;
  report.acc = acc;
  report.per_length = per_length;
  report.records = records;
  report.wall_s = hsa::seconds_since(t_start);
  write_report_or_explain(dir, report);
  return 0;
}

std::string task_help() {
  std::string s = "\nTasks (--tasks a,b or all):\n";
  for (const hsa::eval::RulerTaskInfo& info : hsa::eval::ruler_tasks())
    s += fmt::format("  {:<17}{}\n", info.name, info.description);
  s += "\nHeld-out training tasks (--tasks heldout, or by name): phrasings no training row uses\n";
  for (const hsa::eval::RulerTaskInfo& info : hsa::eval::heldout_tasks())
    s += fmt::format("  {:<27}{}\n", info.name, info.description);
  s += "\nScore of a sample: fraction of expected strings contained in the output; accuracy = mean x 100.\n";
  return s;
}

hsa::cli::Command ruler_command("ruler", "RULER-style long-context evaluation on synthetic tasks", [](CLI::App& app) {
  auto o = std::make_shared<RulerOptions>();
  app.add_option("-m,--model", o->model, "checkpoint directory or run directory");
  app.add_option("--tasks", o->tasks, "comma-separated task names, 'all' (RULER's 11) or 'heldout'")
      ->capture_default_str();
  app.add_option("--lengths", o->lengths, "context lengths in tokens, comma-separated")
      ->delimiter(',')
      ->check(hsa::cli::positive_number())
      ->capture_default_str();
  app.add_option("-n,--samples", o->samples, "samples per task and length")
      ->check(hsa::cli::positive_number())
      ->capture_default_str();
  app.add_option("--max-new-tokens", o->max_new_tokens, "tokens decoded greedily per sample")
      ->check(hsa::cli::positive_number())
      ->capture_default_str();
  app.add_option("--segment", o->segment, "prefill segment size in tokens")
      ->check(hsa::cli::positive_number())
      ->capture_default_str();
  app.add_option("--seed", o->seed, "seed for the samples")->check(hsa::cli::non_negative_number())->capture_default_str();
  app.add_option("--filler", o->filler,
                 "text corpus for the essay-like haystacks, e.g. data/filler-eval.txt from `hsa data filler` "
                 "(default: built-in generator)")
      ->check(CLI::ExistingFile);
  app.add_option("-o,--out", o->out, "output directory (ruler.md, ruler.json, ruler.svg, ruler.png)")
      ->capture_default_str();
  hsa::cli::add_placement_options(app, o->device, o->dtype);
  app.add_option("--merge", o->merge,
                 "combine these ruler.json files (e.g. one per length) into one report in --out, then exit")
      ->delimiter(',')
      ->check(CLI::ExistingFile);
  app.add_flag("--resume", o->resume,
               "continue the run recorded in --out/ruler.jsonl (same model, seed, filler, max-new-tokens): its "
               "finished samples are kept, not evaluated again");
  app.add_flag("--force", o->force, "replace the report of an earlier run in --out");
  app.add_option("--show", o->show, "print one sample of this task at the first length and exit (no model)");
  app.footer(task_help());
  return [o] { return run_ruler(*o); };
});

}  // namespace

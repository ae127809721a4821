#include "cli/eval_retrieval.h"

#include "cli/placement_options.h"
#include "cli/validators.h"
#include "eval/retrieval_probe.h"
#include "eval/retrieval_report.h"
#include "model/checkpoint.h"
#include "model/placement.h"
#include "text/filler.h"
#include "text/tasks.h"
#include "text/tokenizer.h"
#include "train/trainer.h"
#include "util/file_util.h"
#include "util/progress.h"

#include <hsa/error.h>
#include <hsa/random.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

namespace hsa::cli {
namespace {

struct RetrievalOptions {
  std::string model;
  std::string tasks = "passkey,multikey_niah,variable_tracking";
  std::vector<int64_t> lengths = {4096};
  int64_t samples = 20;
  std::string phrasings;  // default: legacy for byte-level models, train otherwise
  std::string filler;     // text corpus for the haystacks (built-in generator when empty)
  int64_t segment = 2048;
  uint64_t seed = 7;
  std::string device = "cpu", dtype;
  std::string out = "retrieval-out";
  bool force = false;
};

// Seed of sample `index` of a task at a length: distinct per (task, length, index) for one --seed.
uint64_t sample_seed(uint64_t seed, TaskKind kind, int64_t length, int64_t index) {
  uint64_t h = seed;
  for (uint64_t v : {static_cast<uint64_t>(kind) + 1, static_cast<uint64_t>(length), static_cast<uint64_t>(index)})
    h = Rng(h ^ v).next_u64();
  return h;
}

std::vector<TaskKind> parse_tasks(const std::string& csv, Phrasings phrasings) {
  std::vector<TaskKind> kinds;
  size_t start = 0;
  while (start <= csv.size()) {
    const size_t end = std::min(csv.find(',', start), csv.size());
    const std::string name = csv.substr(start, end - start);
    TaskKind kind;
    try {
      kind = parse_task_kind(name);
    } catch (const Error& e) {
      fail_argument("eval retrieval: --tasks: {}", e.what());
    }
    if (std::find(kinds.begin(), kinds.end(), kind) != kinds.end())
      fail_argument("eval retrieval: --tasks names {} twice", name);
    if (phrasings == Phrasings::legacy) {
      const std::vector<TaskKind> legacy = legacy_task_kinds();
      if (std::find(legacy.begin(), legacy.end(), kind) == legacy.end())
        fail_argument("eval retrieval: task {} has no legacy phrasing (the byte-level default): give --phrasings "
                      "train or eval",
                      name);
    }
    kinds.push_back(kind);
    start = end + 1;
  }
  return kinds;
}

int run_retrieval(const RetrievalOptions& o) {
  if (o.model.empty()) fail_argument("eval retrieval: give a model with -m");
  if (o.lengths.empty()) fail_argument("eval retrieval: no --lengths given");
  for (size_t i = 1; i < o.lengths.size(); ++i)
    if (o.lengths[i] <= o.lengths[i - 1])
      fail_argument("eval retrieval: --lengths must be increasing, got {} after {}", o.lengths[i], o.lengths[i - 1]);
  for (const char* name : {"retrieval.json", "retrieval.md"})
    if (!o.force && std::filesystem::exists(std::filesystem::path(o.out) / name))
      fail_argument("eval retrieval: '{}' already holds a report ({}); give --force to replace it", o.out, name);
  const std::string dir = resolve_checkpoint_dir(o.model);
  const ModelConfig config = ModelConfig::from_file(dir + "/config.json");
  if (!config.has_memory()) fail_argument("eval retrieval: {} has no HSA layers (num_upper_groups 0)", o.model);
  const std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(config.tokenizer, dir);
  Phrasings phrasings = tokenizer->name() == "bytes" ? Phrasings::legacy : Phrasings::train;
  if (!o.phrasings.empty()) phrasings = parse_phrasings(o.phrasings);
  const std::vector<TaskKind> kinds = parse_tasks(o.tasks, phrasings);
  const FillerText filler = o.filler.empty() ? FillerText() : FillerText(read_file(o.filler));
  // A length too small for a task is a bad value: find out before loading the model.
  for (TaskKind kind : kinds) try {
      make_task_sample(kind, o.lengths.front(), sample_seed(o.seed, kind, o.lengths.front(), 0), filler, *tokenizer,
                       phrasings);
    } catch (const Error& e) {
      fail_argument("eval retrieval: --lengths {}: {}", o.lengths.front(), e.what());
    }

  Checkpoint ck = load_checkpoint(dir);
  const Placement place = resolve_placement(o.device, o.dtype);
  const Model model = place_model(ck, place);
  eval::RetrievalReport report;
  report.topk = config.chunk_topk;
  int64_t total = 0;
  for (int64_t length : o.lengths) total += length * o.samples * static_cast<int64_t>(kinds.size());
  Progress progress("eval retrieval", total, "tok", 5.0);
  int64_t done = 0;
  const auto t_start = std::chrono::steady_clock::now();
  for (int64_t length : o.lengths)
    for (TaskKind kind : kinds) {
      eval::RetrievalGroup group;
      group.task = task_kind_name(kind);
      group.length = length;
      const auto t_group = std::chrono::steady_clock::now();
      for (int64_t s = 0; s < o.samples; ++s) {
        const TaskSample sample =
            make_task_sample(kind, length, sample_seed(o.seed, kind, length, s), filler, *tokenizer, phrasings);
        ++group.samples;
        const int64_t needle = eval::find_needle(sample, *tokenizer);
        const std::string status = fmt::format("{} L={} sample {}/{}", group.task, length, s + 1, o.samples);
        if (needle < 0) {
          ++group.needle_not_found;
        } else {
          const std::span<const int32_t> prompt(sample.tokens.data(), static_cast<size_t>(sample.prompt_length));
          group.add(eval::probe_retrieval(model, prompt, needle / config.chunk_size, o.segment,
                                          [&](int64_t read) { progress.update(done + read, status); }),
                    config.chunk_topk);
        }
        done += length;  // the tokens after the prompt (answer, padding) count as done too
        progress.update(done, status);
      }
      group.wall_s = seconds_since(t_group);
      report.groups.push_back(std::move(group));
    }
  progress.finish();
  report.meta = {{"model", o.model},
                 {"device", place.description},
                 {"dtype", dtype_name(place.dtype)},
                 {"tokenizer", tokenizer->name()},
                 {"phrasings", phrasings_name(phrasings)},
                 {"filler", o.filler.empty() ? "built-in" : o.filler},
                 {"seed", o.seed},
                 {"samples", o.samples},
                 {"segment", o.segment},
                 {"chunk_size", config.chunk_size},
                 {"commands", {command_line()}},
                 {"wall_s", seconds_since(t_start)}};
  eval::write_retrieval_report(o.out, report);
  fmt::print("{}\nwrote {}/retrieval.md, retrieval.json\n", eval::retrieval_markdown(report), o.out);
  return 0;
}

}  // namespace

Runner add_eval_retrieval(CLI::App& eval, CLI::App*& subcommand) {
  auto o = std::make_shared<RetrievalOptions>();
  CLI::App* app = eval.add_subcommand(
      "retrieval", "where HSA retrieval looks at the answer position of synthetic task samples (a diagnostic)");
  app->add_option("-m,--model", o->model, "checkpoint directory or run directory");
  app->add_option("--tasks", o->tasks,
                  "comma-separated synthetic tasks: passkey, multikey_niah, variable_tracking, and with --phrasings "
                  "train or eval also kv_lookup, multi_value, multi_query")
      ->capture_default_str();
  app->add_option("--lengths", o->lengths, "context lengths in the model's tokens, comma-separated, increasing")
      ->delimiter(',')
      ->check(positive_number())
      ->capture_default_str();
  app->add_option("-n,--samples", o->samples, "samples per task and length")
      ->check(positive_number())
      ->capture_default_str();
  app->add_option("--phrasings", o->phrasings,
                  "task phrasing pool: legacy, train or eval (default: legacy for byte-level models, train otherwise)")
      ->check(CLI::IsMember({"legacy", "train", "eval"}));
  app->add_option("--filler", o->filler,
                  "text corpus for the haystacks, e.g. data/filler-eval.txt (default: built-in generator)")
      ->check(CLI::ExistingFile);
  app->add_option("--segment", o->segment, "prefill segment size in tokens (bounds the logits held at once)")
      ->check(positive_number())
      ->capture_default_str();
  app->add_option("--seed", o->seed, "seed for the samples")->check(non_negative_number())->capture_default_str();
  add_placement_options(*app, o->device, o->dtype);
  app->add_option("-o,--out", o->out, "output directory (retrieval.md, retrieval.json)")->capture_default_str();
  app->add_flag("--force", o->force, "replace the report of an earlier run in --out");
  app->footer(
      "\nFor every sample the needle is the first occurrence of the answer's tokens in the prompt (of its first "
      "value, for answers of several values) and the needle chunk the chunk holding its first token. The model "
      "reads the prompt but its last token as in inference (segments, no training cache), then the last token with "
      "a trace of each HSA layer: so memory is that of an inference at the length (SWA windows, the chunk memory, "
      "one segment's logits), and long lengths cost time, not a training cache. At that position, per HSA layer "
      "and retrieval (KV) head: recall@K (the needle chunk among the chunks the model selected), its rank among "
      "the visible chunks' scores (0 = best), its weight when selected, how often chunk 0 scores highest while "
      "the needle is elsewhere (sink), the score spreads top1-top2 and top1-median (scaled scores) and the mean "
      "pairwise cosine of the visible landmarks. Chance columns give what a random ranking would score. "
      "docs/training-lm.md explains the table.\n");
  subcommand = app;
  return [o] { return run_retrieval(*o); };
}

}  // namespace hsa::cli

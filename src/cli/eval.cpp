// hsa eval loss: held-out next-token loss by context length and by token position (src/eval/loss_eval.h), or
// the merge of several runs' loss.json into one comparison (HSA vs SWA-only vs dense). hsa eval retrieval: see
// cli/eval_retrieval.h.
#include "cli/command.h"
#include "cli/eval_retrieval.h"
#include "cli/placement_options.h"
#include "eval/loss_eval.h"
#include "eval/loss_report.h"
#include "eval/plot_svg.h"
#include "model/checkpoint.h"
#include "model/placement.h"
#include "text/token_shard.h"
#include "train/trainer.h"
#include "util/progress.h"

#include <hsa/error.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdio>

namespace {

struct LossOptions {
  std::string model;
  std::string data = "data/lm-eval.bin";
  std::vector<int64_t> lengths = {4096, 16384, 65536, 262144, 1048576};
  int64_t samples = 4;
  int64_t segment = 16384;
  std::string device = "cpu", dtype;
  std::string out = "loss-out";
  std::vector<std::string> merge;
};

// What is wrong with the options of a loss run ("" when nothing).
std::string argument_error(const LossOptions& o) {
  if (o.model.empty()) return "give a model with -m (or --merge a/loss.json,b/loss.json)";
  if (o.lengths.empty()) return "no --lengths given";
  for (size_t i = 0; i < o.lengths.size(); ++i)
    if (o.lengths[i] < 1 || (i > 0 && o.lengths[i] <= o.lengths[i - 1]))
      return fmt::format("--lengths must be positive and increasing, got {} at index {}", o.lengths[i], i);
  if (o.samples < 1) return fmt::format("--samples must be >= 1, got {}", o.samples);
  if (o.segment < 1) return fmt::format("--segment must be >= 1, got {}", o.segment);
  return "";
}

int run_loss(const LossOptions& o) {
  if (!o.merge.empty()) {
    hsa::eval::write_merged_loss_report(o.out, o.merge, hsa::cli::command_line());
    fmt::print("wrote {}/loss.json, loss.md, loss.svg ({} inputs)\n", o.out, o.merge.size());
    return 0;
  }
  if (const std::string bad = argument_error(o); !bad.empty()) {
    std::fprintf(stderr, "hsa: eval loss: %s (see hsa eval loss --help)\n", bad.c_str());
    return 2;  // bad arguments exit 2, like CLI11's own parse errors
  }
  const hsa::TokenShard shard = hsa::TokenShard::open(o.data);
  hsa::Checkpoint ck = hsa::load_checkpoint(hsa::resolve_checkpoint_dir(o.model));
  const hsa::Placement place = hsa::resolve_placement(o.device, o.dtype);
  const hsa::Model model = hsa::place_model(ck, place);
  const int64_t vocab = model.config().vocab_size;

  hsa::eval::LossReport report;
  int64_t total = 0;
  for (int64_t length : o.lengths) {
    hsa::eval::LengthLoss l;
    l.length = length;
    l.offsets = hsa::eval::window_offsets(shard.size(), length, o.samples);
    if (l.offsets.empty())
      l.skipped = fmt::format("{} holds {} tokens, fewer than the {} a window needs", o.data, shard.size(), length + 1);
    else
      l.buckets = hsa::eval::position_buckets(length);
    total += length * static_cast<int64_t>(l.offsets.size());
    report.lengths.push_back(std::move(l));
  }
  for (const hsa::eval::LengthLoss& l : report.lengths)
    if (!l.skipped.empty()) fmt::print("L={}: skipped, {}\n", l.length, l.skipped);

  hsa::Progress progress("eval loss", total, "tok", 5.0);
  int64_t done = 0;
  const auto t_start = std::chrono::steady_clock::now();
  std::vector<int32_t> window;
  for (hsa::eval::LengthLoss& l : report.lengths) {
    const auto t_length = std::chrono::steady_clock::now();
    for (size_t w = 0; w < l.offsets.size(); ++w) {
      window.resize(static_cast<size_t>(l.length + 1));
      shard.read(l.offsets[w], l.length + 1, window.data());
      for (int32_t id : window)
        HSA_CHECK(id >= 0 && id < vocab,
                  "eval loss: {} holds token id {}, outside the model's vocabulary of {} (a shard made with "
                  "another tokenizer?)",
                  o.data, id, vocab);
      const int64_t before = done;
      hsa::eval::add_window_loss(model, window, o.segment, l.buckets, [&](int64_t d, int64_t) {
        done = before + d;
        progress.update(done, fmt::format("L={} window {}/{}: loss {:.3f} so far", hsa::eval::length_label(l.length),
                                          w + 1, l.offsets.size(), hsa::eval::mean_loss(l.buckets)));
      });
    }
    l.wall_s = hsa::seconds_since(t_length);
  }
  progress.finish();
  report.meta = {{"model", o.model},
                 {"device", place.description},
                 {"dtype", hsa::dtype_name(place.dtype)},
                 {"data", o.data},
                 {"data_tokens", shard.size()},
                 {"samples", o.samples},
                 {"segment", o.segment},
                 {"commands", {hsa::cli::command_line()}},
                 {"wall_s", hsa::seconds_since(t_start)}};
  hsa::eval::write_loss_report(o.out, report);
  for (const hsa::eval::LengthLoss& l : report.lengths)
    if (l.skipped.empty())
      fmt::print("L={:<6} mean loss {:.4f} over {} tokens ({} windows, {})\n", hsa::eval::length_label(l.length),
                 hsa::eval::mean_loss(l.buckets), hsa::eval::total_tokens(l.buckets), l.offsets.size(),
                 hsa::format_duration(l.wall_s));
  fmt::print("wrote {}/loss.json, loss.md, loss.svg\n", o.out);
  return 0;
}

hsa::cli::Command eval_command("eval", "held-out evaluation of a model: loss on natural text, retrieval diagnostics",
                               [](CLI::App& app) {
  app.require_subcommand(1);
  auto o = std::make_shared<LossOptions>();
  CLI::App* loss = app.add_subcommand("loss", "held-out next-token loss by context length and by token position");
  loss->add_option("-m,--model", o->model, "checkpoint directory or run directory");
  loss->add_option("--data", o->data, "token shard of held-out text (hsa data build)")->capture_default_str();
  loss->add_option("--lengths", o->lengths, "context lengths in tokens, comma-separated, increasing")
      ->delimiter(',')
      ->capture_default_str();
  loss->add_option("-n,--samples", o->samples, "windows per length (evenly spread over the shard)")
      ->capture_default_str();
  loss->add_option("--segment", o->segment, "tokens read per forward call (bounds the logits held at once)")
      ->capture_default_str();
  hsa::cli::add_placement_options(*loss, o->device, o->dtype);
  loss->add_option("-o,--out", o->out, "output directory (loss.json, loss.md, loss.svg)")->capture_default_str();
  loss->add_option("--merge", o->merge,
                   "combine these loss.json files (e.g. HSA, SWA-only and dense models) into one report in --out")
      ->delimiter(',')
      ->check(CLI::ExistingFile);
  loss->footer(
      "\nA window of length L is L+1 consecutive tokens of the shard (documents concatenated); the model reads "
      "the first L in segments and the logits at position p predict token p+1, so a window gives L "
      "predictions. Their losses are averaged per position bucket [0,1K), [1K,2K), [2K,4K), ... up to L, and "
      "over all positions. Windows start at evenly spread offsets (the same on every run); lengths longer "
      "than the shard are skipped and listed in the report.\n");
  CLI::App* retrieval = nullptr;
  hsa::cli::Runner run_retrieval = hsa::cli::add_eval_retrieval(app, retrieval);
  return [o, loss, retrieval, run_retrieval] {
    if (loss->parsed()) return run_loss(*o);
    if (retrieval->parsed()) return run_retrieval();
    throw hsa::Error("eval: give a subcommand: loss or retrieval");
  };
});

}  // namespace

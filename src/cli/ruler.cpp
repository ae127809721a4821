// hsa ruler: RULER-style long-context evaluation (synthetic tasks, no external data). Runs every task at every
// length, prefilling each prompt in segments and decoding greedily; writes a markdown table, a JSON record of
// every sample, an SVG plot of accuracy against length and, when gnuplot is installed, the same plot as PNG.
#include "cli/command.h"
#include "cli/placement_options.h"
#include "eval/plot_svg.h"
#include "eval/ruler.h"
#include "infer/placement.h"
#include "infer/sampler.h"
#include "infer/session.h"
#include "model/checkpoint.h"
#include "model/file_util.h"
#include "train/progress.h"
#include "train/tokenizer.h"
#include "train/trainer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <cstdlib>
#include <filesystem>
#include <fstream>

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
};

// Everything ruler.md / ruler.json / ruler.svg hold: one run's, or several runs' merged by length.
struct RulerReport {
  nlohmann::json meta;                  // model, device, dtype, seed, max_new_tokens, command(s)
  std::vector<RulerTask> tasks;
  std::vector<int64_t> lengths;         // increasing
  std::vector<std::vector<double>> acc;  // [task][length], percent
  nlohmann::json per_length = nlohmann::json::array();  // {length, samples, wall_s} per length
  nlohmann::json records = nlohmann::json::array();
  double wall_s = 0;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path);
  HSA_CHECK(f.good(), "ruler: cannot write {}", path.string());
  f << text;
  HSA_CHECK(f.good(), "ruler: failed writing {}", path.string());
}

bool have_gnuplot() { return std::system("command -v gnuplot > /dev/null 2>&1") == 0; }

void write_svg_plot(const std::filesystem::path& dir, const std::string& title, const std::vector<RulerTask>& tasks,
                    const std::vector<int64_t>& lengths, const std::vector<std::vector<double>>& acc) {
  std::vector<hsa::eval::PlotSeries> series;
  for (size_t t = 0; t < tasks.size(); ++t) series.push_back({hsa::eval::ruler_task_name(tasks[t]), acc[t]});
  write_file(dir / "ruler.svg", hsa::eval::accuracy_plot_svg(title, lengths, series));
  fmt::print("wrote {}\n", (dir / "ruler.svg").string());
}

void write_png_plot(const std::filesystem::path& dir, const std::vector<RulerTask>& tasks,
                const std::vector<int64_t>& lengths, const std::vector<std::vector<double>>& acc) {
  if (!have_gnuplot()) {
    fmt::print("note: gnuplot not found on PATH, no ruler.png (ruler.svg has the same plot)\n");
    return;
  }
  std::string data = "# length";
  for (RulerTask t : tasks) data += " " + hsa::eval::ruler_task_name(t);
  data += "\n";
  for (size_t l = 0; l < lengths.size(); ++l) {
    data += std::to_string(lengths[l]);
    for (size_t t = 0; t < tasks.size(); ++t) data += fmt::format(" {:.3f}", acc[t][l]);
    data += "\n";
  }
  write_file(dir / "ruler.dat", data);
  std::string script = fmt::format(
      "set terminal pngcairo size 1000,600\nset output '{}'\nset logscale x 2\nset yrange [0:105]\n"
      "set xlabel 'context length (tokens)'\nset ylabel 'accuracy (%)'\nset key outside right\nset grid\nplot ",
      (dir / "ruler.png").string());
  for (size_t t = 0; t < tasks.size(); ++t)
    script += fmt::format("{}'{}' using 1:{} with linespoints title '{}'", t ? ", " : "", (dir / "ruler.dat").string(),
                          t + 2, hsa::eval::ruler_task_name(tasks[t]));
  script += "\n";
  write_file(dir / "ruler.gp", script);
  const std::string cmd = fmt::format("gnuplot '{}'", (dir / "ruler.gp").string());
  if (std::system(cmd.c_str()) == 0)
    fmt::print("wrote {}\n", (dir / "ruler.png").string());
  else
    fmt::print("note: gnuplot failed (no pngcairo terminal?), no ruler.png\n");
}

int merge_reports(const RulerOptions& o);

void write_report(const std::filesystem::path& dir, const RulerReport& r) {
  const std::string table = hsa::eval::ruler_markdown_table(r.tasks, r.lengths, r.acc);
  std::string md = fmt::format("# RULER (synthetic) — {}\n\ngreedy, {} new tokens, seed {}, filler {}, on {} ({})\n\n",
                               r.meta["model"].get<std::string>(), r.meta["max_new_tokens"].get<int64_t>(),
                               r.meta["seed"].get<uint64_t>(), r.meta["filler"].get<std::string>(),
                               r.meta["device"].get<std::string>(), r.meta["dtype"].get<std::string>());
  md += table;
  md += "\n| length | samples per task | wall time |\n|---:|---:|---:|\n";
  for (const nlohmann::json& pl : r.per_length)
    md += fmt::format("| {} | {} | {} |\n", pl["length"].get<int64_t>(), pl["samples"].get<int64_t>(),
                      hsa::format_duration(pl["wall_s"].get<double>()));
  md += "\nCommands:\n\n";
  for (const auto& c : r.meta["commands"]) md += fmt::format("    {}\n", c.get<std::string>());
  write_file(dir / "ruler.md", md);

  nlohmann::json accuracy = nlohmann::json::object();
  for (size_t ti = 0; ti < r.tasks.size(); ++ti) {
    nlohmann::json row = nlohmann::json::object();
    for (size_t li = 0; li < r.lengths.size(); ++li) row[std::to_string(r.lengths[li])] = r.acc[ti][li];
    accuracy[hsa::eval::ruler_task_name(r.tasks[ti])] = row;
  }
  nlohmann::json j = r.meta;
  j["lengths"] = r.lengths;
  j["accuracy"] = accuracy;
  j["per_length"] = r.per_length;
  j["wall_s"] = r.wall_s;
  j["records"] = r.records;
  // Model output is raw bytes and may be invalid UTF-8: replace those bytes rather than fail at the end.
  write_file(dir / "ruler.json", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  fmt::print("\n{}\nwrote {} and {}\n", table, (dir / "ruler.md").string(), (dir / "ruler.json").string());
  write_svg_plot(dir, fmt::format("RULER (synthetic): {}", r.meta["model"].get<std::string>()), r.tasks, r.lengths,
                 r.acc);
  write_png_plot(dir, r.tasks, r.lengths, r.acc);
}

int run_ruler(const RulerOptions& o) {
  if (!o.merge.empty()) return merge_reports(o);
  const std::vector<RulerTask> tasks = hsa::eval::parse_ruler_task_list(o.tasks);
  HSA_CHECK(!o.lengths.empty(), "ruler: no lengths given");
  for (size_t i = 0; i < o.lengths.size(); ++i) {
    HSA_CHECK(o.lengths[i] > 0, "ruler: lengths must be > 0, got {}", o.lengths[i]);
    HSA_CHECK(i == 0 || o.lengths[i] > o.lengths[i - 1], "ruler: --lengths must be increasing, got {} after {}",
              o.lengths[i], o.lengths[i - 1]);
  }
  HSA_CHECK(o.samples > 0, "ruler: --samples must be > 0, got {}", o.samples);
  HSA_CHECK(o.max_new_tokens > 0, "ruler: --max-new-tokens must be > 0, got {}", o.max_new_tokens);
  const hsa::FillerText filler = o.filler.empty() ? hsa::FillerText() : hsa::FillerText(hsa::read_file(o.filler));
  if (!o.show.empty()) {
    RulerTask task = hsa::eval::parse_ruler_task(o.show);
    const int64_t length = o.lengths.front();
    hsa::eval::RulerSample s =
        hsa::eval::make_ruler_sample(task, length, hsa::eval::ruler_sample_seed(o.seed, task, length, 0), filler);
    fmt::print("{}\n---\n{} tokens; expected: {}\n", s.prompt, s.tokens().size(), fmt::join(s.expected, " | "));
    return 0;
  }
  HSA_CHECK(!o.model.empty(), "ruler: give a model with -m (or --show TASK to print a sample)");
  hsa::Checkpoint ck = hsa::load_checkpoint(hsa::resolve_checkpoint_dir(o.model));
  const hsa::Placement place = hsa::resolve_placement(o.device, o.dtype);
  hsa::Model model = hsa::place_model(ck, place);
  hsa::ByteTokenizer tok;
  const std::filesystem::path dir(o.out);
  std::filesystem::create_directories(dir);

  const int64_t total = static_cast<int64_t>(tasks.size() * o.lengths.size()) * o.samples;
  hsa::Progress progress("ruler", total, "sample", 5.0);
  int64_t done = 0;
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
        hsa::eval::RulerSample sample = hsa::eval::make_ruler_sample(task, length, seed, filler);
        std::vector<int32_t> ids = sample.tokens();
        hsa::Session session(model);
        auto t0 = std::chrono::steady_clock::now();
        hsa::Tensor logits = session.prefill(ids, o.segment);
        const double prefill_s = seconds_since(t0);
        hsa::Rng rng(1);  // unused by greedy decoding
        std::vector<int32_t> out;
        auto t1 = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < o.max_new_tokens; ++i) {
          int32_t next = hsa::sample_token(logits, {}, rng);
          if (next == hsa::ByteTokenizer::kEos) break;
          out.push_back(next);
          if (i + 1 < o.max_new_tokens) logits = session.step(next);
        }
        const double decode_s = seconds_since(t1);
        const std::string answer = tok.decode(out);
        const double score = hsa::eval::ruler_score(sample.expected, answer);
        scores.push_back(score);
        records.push_back({{"task", name},
                           {"length", length},
                           {"sample", s},
                           {"seed", seed},
                           {"prompt_tokens", ids.size()},
                           {"expected", sample.expected},
                           {"output", answer},
                           {"score", score},
                           {"prefill_s", prefill_s},
                           {"decode_s", decode_s}});
        progress.update(++done,
                        fmt::format("{} @ {}: {:.0f}% so far", name, length, hsa::eval::ruler_accuracy(scores)));
      }
      acc[ti][li] = hsa::eval::ruler_accuracy(scores);
    }
    per_length.push_back({{"length", length}, {"samples", o.samples}, {"wall_s", seconds_since(t_length)}});
  }
  progress.finish();
  RulerReport report;
  report.meta = {{"model", o.model},
                 {"device", place.description},
                 {"dtype", hsa::dtype_name(place.dtype)},
                 {"seed", o.seed},
                 {"max_new_tokens", o.max_new_tokens},
                 {"filler", o.filler.empty() ? "built-in" : o.filler},
                 {"commands", {hsa::cli::command_line()}}};
  report.tasks = tasks;
  report.lengths = o.lengths;
  report.acc = acc;
  report.per_length = per_length;
  report.records = records;
  report.wall_s = seconds_since(t_start);
  write_report(dir, report);
  return 0;
}

// Combines ruler.json files (say one per length, run separately so a long length cannot lose the short ones) into
// one report; a length present in several files keeps the last.
int merge_reports(const RulerOptions& o) {
  RulerReport report;
  std::map<int64_t, std::pair<nlohmann::json, std::map<std::string, double>>> by_length;
  std::vector<std::string> task_names;
  for (const std::string& path : o.merge) {
    nlohmann::json j = nlohmann::json::parse(hsa::read_file(path), nullptr, false);
    HSA_CHECK(!j.is_discarded() && j.contains("accuracy") && j.contains("per_length"),
              "ruler --merge: {} is not a ruler.json", path);
    std::vector<std::string> names;
    for (const auto& [task, row] : j["accuracy"].items()) names.push_back(task);
    if (task_names.empty()) task_names = names;
    HSA_CHECK(std::is_permutation(names.begin(), names.end(), task_names.begin(), task_names.end()),
              "ruler --merge: {} has tasks {}, the first file has {}", path, fmt::join(names, ","),
              fmt::join(task_names, ","));
    for (const nlohmann::json& pl : j["per_length"]) {
      const int64_t length = pl["length"].get<int64_t>();
      nlohmann::json entry = pl;
      if (!entry.contains("samples")) entry["samples"] = j.value("samples", 0);
      std::map<std::string, double> cell;
      for (const auto& [task, row] : j["accuracy"].items()) cell[task] = row[std::to_string(length)].get<double>();
      by_length[length] = {entry, cell};
    }
    for (const nlohmann::json& r : j["records"]) report.records.push_back(r);
    report.wall_s += j.value("wall_s", 0.0);
    if (report.meta.is_null()) report.meta = {{"model", j.value("model", "")}, {"device", j.value("device", "")},
                                              {"dtype", j.value("dtype", "")}, {"seed", j.value("seed", 0)},
                                              {"max_new_tokens", j.value("max_new_tokens", 0)},
                                              {"filler", j.value("filler", "unrecorded")}, {"commands", nlohmann::json::array()}};
    for (const auto& c : j.value("commands", nlohmann::json::array())) report.meta["commands"].push_back(c);
  }
  report.meta["commands"].push_back(hsa::cli::command_line());
  // JSON objects come back sorted by key: restore the order `hsa ruler --help` lists the tasks in.
  std::vector<std::string> ordered;
  for (const hsa::eval::RulerTaskInfo& info : hsa::eval::ruler_tasks())
    if (std::find(task_names.begin(), task_names.end(), info.name) != task_names.end())
      ordered.emplace_back(info.name);
  task_names = ordered;
  for (const std::string& name : task_names) report.tasks.push_back(hsa::eval::parse_ruler_task(name));
  for (const auto& [length, entry] : by_length) {
    report.lengths.push_back(length);
    report.per_length.push_back(entry.first);
  }
  report.acc.assign(report.tasks.size(), {});
  for (size_t ti = 0; ti < task_names.size(); ++ti)
    for (const auto& [length, entry] : by_length) report.acc[ti].push_back(entry.second.at(task_names[ti]));
  std::filesystem::create_directories(o.out);
  write_report(o.out, report);
  return 0;
}

std::string task_help() {
  std::string s = "\nTasks (--tasks a,b or all):\n";
  for (const hsa::eval::RulerTaskInfo& info : hsa::eval::ruler_tasks())
    s += fmt::format("  {:<17}{}\n", info.name, info.description);
  s += "\nScore of a sample: fraction of expected strings contained in the output; accuracy = mean x 100.\n";
  return s;
}

hsa::cli::Command ruler_command("ruler", "RULER-style long-context evaluation on synthetic tasks", [](CLI::App& app) {
  auto o = std::make_shared<RulerOptions>();
  app.add_option("-m,--model", o->model, "checkpoint directory or run directory");
  app.add_option("--tasks", o->tasks, "comma-separated task names, or 'all'")->capture_default_str();
  app.add_option("--lengths", o->lengths, "context lengths in tokens, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("-n,--samples", o->samples, "samples per task and length")->capture_default_str();
  app.add_option("--max-new-tokens", o->max_new_tokens, "tokens decoded greedily per sample")->capture_default_str();
  app.add_option("--segment", o->segment, "prefill segment size in tokens")->capture_default_str();
  app.add_option("--seed", o->seed, "seed for the samples")->capture_default_str();
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
  app.add_option("--show", o->show, "print one sample of this task at the first length and exit (no model)");
  app.footer(task_help());
  return [o] { return run_ruler(*o); };
});

}  // namespace

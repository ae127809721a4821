#include "eval/ruler_report.h"

#include "eval/plot_svg.h"
#include "util/file_util.h"
#include "util/progress.h"

#include <hsa/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <map>

namespace hsa::eval {

namespace {

void write_file(const std::filesystem::path& path, const std::string& text) { write_file_atomic(path.string(), text); }

bool have_gnuplot() { return std::system("command -v gnuplot > /dev/null 2>&1") == 0; }

void write_svg_plot(const std::filesystem::path& dir, const std::string& title, const std::vector<RulerTask>& tasks,
                    const std::vector<int64_t>& lengths, const std::vector<std::vector<double>>& acc) {
  std::vector<PlotSeries> series;
  for (size_t t = 0; t < tasks.size(); ++t) series.push_back({ruler_task_name(tasks[t]), acc[t]});
  write_file(dir / "ruler.svg", accuracy_plot_svg(title, lengths, series));
  fmt::print("wrote {}\n", (dir / "ruler.svg").string());
}

void write_png_plot(const std::filesystem::path& dir, const std::vector<RulerTask>& tasks,
                const std::vector<int64_t>& lengths, const std::vector<std::vector<double>>& acc) {
  if (!have_gnuplot()) {
    fmt::print("note: gnuplot not found on PATH, no ruler.png (ruler.svg has the same plot)\n");
    return;
  }
  std::string data = "# length";
  // append, not " " + name: GCC 12 gives a -Wrestrict false alarm on operator+(const char*, string&&).
  for (RulerTask t : tasks) data.append(" ").append(ruler_task_name(t));
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
                          t + 2, ruler_task_name(tasks[t]));
  script += "\n";
  write_file(dir / "ruler.gp", script);
  const std::string cmd = fmt::format("gnuplot '{}'", (dir / "ruler.gp").string());
  if (std::system(cmd.c_str()) == 0)
    fmt::print("wrote {}\n", (dir / "ruler.png").string());
  else
    fmt::print("note: gnuplot failed (no pngcairo terminal?), no ruler.png\n");
}

}  // namespace

void write_ruler_report(const std::filesystem::path& dir, const RulerReport& r) {
  const std::string table = ruler_markdown_table(r.tasks, r.lengths, r.acc);
  std::string md = fmt::format("# RULER (synthetic) — {}\n\ngreedy, {} new tokens, seed {}, filler {}, on {} ({})\n\n",
                               r.meta["model"].get<std::string>(), r.meta["max_new_tokens"].get<int64_t>(),
                               r.meta["seed"].get<uint64_t>(), r.meta["filler"].get<std::string>(),
                               r.meta["device"].get<std::string>(), r.meta["dtype"].get<std::string>());
  md += table;
  md += "\n| length | samples per task | wall time |\n|---:|---:|---:|\n";
  for (const nlohmann::json& pl : r.per_length)
    md += fmt::format("| {} | {} | {} |\n", pl["length"].get<int64_t>(), pl["samples"].get<int64_t>(),
                      format_duration(pl["wall_s"].get<double>()));
  md += "\nCommands:\n\n";
  for (const auto& c : r.meta["commands"]) md += fmt::format("    {}\n", c.get<std::string>());
  write_file(dir / "ruler.md", md);

  nlohmann::json accuracy = nlohmann::json::object();
  for (size_t ti = 0; ti < r.tasks.size(); ++ti) {
    nlohmann::json row = nlohmann::json::object();
    for (size_t li = 0; li < r.lengths.size(); ++li) row[std::to_string(r.lengths[li])] = r.acc[ti][li];
    accuracy[ruler_task_name(r.tasks[ti])] = row;
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

RulerReport merge_ruler_reports(const std::vector<std::string>& paths) {
  RulerReport report;
  std::map<int64_t, std::pair<nlohmann::json, std::map<std::string, double>>> by_length;
  std::vector<std::string> task_names;
  for (const std::string& path : paths) {
    nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
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
  // JSON objects come back sorted by key: restore the order `hsa ruler --help` lists the tasks in.
  std::vector<std::string> ordered;
  for (const auto* list : {&ruler_tasks(), &heldout_tasks()})
    for (const RulerTaskInfo& info : *list)
      if (std::find(task_names.begin(), task_names.end(), info.name) != task_names.end())
        ordered.emplace_back(info.name);
  task_names = ordered;
  for (const std::string& name : task_names) report.tasks.push_back(parse_ruler_task(name));
  for (const auto& [length, entry] : by_length) {
    report.lengths.push_back(length);
    report.per_length.push_back(entry.first);
  }
  report.acc.assign(report.tasks.size(), {});
  for (size_t ti = 0; ti < task_names.size(); ++ti)
    for (const auto& [length, entry] : by_length) report.acc[ti].push_back(entry.second.at(task_names[ti]));
  HSA_CHECK(!report.lengths.empty(), "ruler --merge: no lengths in {}", fmt::join(paths, ", "));
  return report;
}

}  // namespace hsa::eval

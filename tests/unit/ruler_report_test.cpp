// RULER reports: runs made one length at a time merge into one table, JSON and plot.
#include "common/temp_dir.h"
#include "eval/ruler_report.h"

#include <gtest/gtest.h>

#include <fstream>

using namespace hsa;
using namespace hsa::eval;
using hsa::testing::TempDir;

namespace {

// A ruler.json as `hsa ruler` writes it, for two tasks at one length.
std::string write_run(const TempDir& tmp, const char* name, int64_t length, double single, double vt) {
  nlohmann::json j = {{"model", "m"}, {"device", "cpu"}, {"dtype", "f32"}, {"seed", 42}, {"max_new_tokens", 16},
                      {"filler", "built-in"}, {"commands", {std::string("hsa ruler --lengths ") + std::to_string(length)}},
                      {"lengths", {length}},
                      {"accuracy", {{"vt", {{std::to_string(length), vt}}}, {"niah_single_1", {{std::to_string(length), single}}}}},
                      {"per_length", {{{"length", length}, {"samples", 3}, {"wall_s", 1.5}}}},
                      {"wall_s", 1.5},
                      {"records", {{{"task", "vt"}, {"length", length}}}}};
  std::string path = tmp.file(name);
  std::ofstream(path) << j.dump();
  return path;
}

}  // namespace

TEST(RulerReport, MergesRunsByLengthInTaskOrder) {
  TempDir tmp;
  // Given out of order: the merged report sorts lengths and lists tasks as `hsa ruler --help` does.
  std::string b = write_run(tmp, "b.json", 65536, 50.0, 0.0), a = write_run(tmp, "a.json", 4096, 100.0, 25.0);
  RulerReport r = merge_ruler_reports({b, a});
  ASSERT_EQ(r.lengths, (std::vector<int64_t>{4096, 65536}));
  ASSERT_EQ(r.tasks.size(), 2u);
  EXPECT_EQ(ruler_task_name(r.tasks[0]), "niah_single_1");
  EXPECT_EQ(ruler_task_name(r.tasks[1]), "vt");
  EXPECT_EQ(r.acc[0], (std::vector<double>{100.0, 50.0}));
  EXPECT_EQ(r.acc[1], (std::vector<double>{25.0, 0.0}));
  EXPECT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.meta["commands"].size(), 2u);
  EXPECT_DOUBLE_EQ(r.wall_s, 3.0);

  write_ruler_report(tmp.path, r);
  std::ifstream md(tmp.file("ruler.md"));
  std::string text((std::istreambuf_iterator<char>(md)), {});
  EXPECT_NE(text.find("| niah_single_1 | 100.0 | 50.0 |"), std::string::npos) << text;
  EXPECT_NE(text.find("hsa ruler --lengths 65536"), std::string::npos) << text;
  EXPECT_TRUE(std::filesystem::exists(tmp.file("ruler.svg")));
  // The merged JSON merges again to the same report.
  RulerReport again = merge_ruler_reports({tmp.file("ruler.json")});
  EXPECT_EQ(again.lengths, r.lengths);
  EXPECT_EQ(again.acc, r.acc);
}

TEST(RulerReport, RefusesFilesWithOtherTasksOrNotRulerJson) {
  TempDir tmp;
  std::string a = write_run(tmp, "a.json", 4096, 100.0, 25.0);
  nlohmann::json other = nlohmann::json::parse(std::ifstream(a));
  other["accuracy"].erase("vt");
  std::ofstream(tmp.file("other.json")) << other.dump();
  EXPECT_THROW(merge_ruler_reports({a, tmp.file("other.json")}), Error);
  std::ofstream(tmp.file("junk.json")) << "{\"x\": 1}";
  EXPECT_THROW(merge_ruler_reports({tmp.file("junk.json")}), Error);
}

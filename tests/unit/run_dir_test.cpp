// A run directory's `latest` is trusted only when it names a checkpoint directory inside the run's own
// checkpoints/, and one trainer at a time holds a run.
#include "common/error_text.h"
#include "common/temp_dir.h"
#include "train/run_dir.h"
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace hsa;
using hsa::testing::error_of;
using hsa::testing::has;
using hsa::testing::TempDir;
namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A run directory with one (empty) checkpoint directory, and a victim directory beside it.
struct RunFixture {
  TempDir tmp;
  fs::path run = tmp.path / "run", victim = tmp.path / "victim";
  RunFixture() {
    fs::create_directories(run / "checkpoints" / "step-000001");
    fs::create_directories(victim);
    write_text(victim / "f", "x");
  }
  void latest(const std::string& text) const { write_text(run / "latest", text); }
};

}  // namespace

TEST(RunDir, CheckpointNamesAreOnePathComponentUnderCheckpoints) {
  EXPECT_TRUE(is_checkpoint_name("checkpoints/step-000020"));
  EXPECT_TRUE(is_checkpoint_name("checkpoints/published_1.x"));
  for (const char* bad : {"", "checkpoints/", "checkpoints/.", "checkpoints/..", "../victim", "/tmp/victim", ".",
                          "checkpoints/../../victim", "checkpoints/a/b", "checkpoints/step-000001.tmp",
                          "checkpoints/step\r", "step-000001", "checkpoints/step 1"})
    EXPECT_FALSE(is_checkpoint_name(bad)) << escape_for_message(bad);
}

TEST(RunDir, LatestNamingAValidCheckpointResolves) {
  RunFixture f;
  f.latest("checkpoints/step-000001\n");
  EXPECT_EQ(fs::path(latest_checkpoint_dir(f.run.string())), f.run / "checkpoints" / "step-000001");
  EXPECT_EQ(fs::path(resolve_checkpoint_dir(f.run.string())), f.run / "checkpoints" / "step-000001");
}

TEST(RunDir, LatestOutsideTheRunIsRefused) {
  RunFixture f;
  for (const std::string& text : {std::string("../victim\n"), f.victim.string() + "\n", std::string(".\n"),
                                  std::string("checkpoints/../../victim\n"), std::string("\n")}) {
    f.latest(text);
    std::string e = error_of([&] { latest_checkpoint_dir(f.run.string()); });
    EXPECT_TRUE(has(e, "latest")) << e;
    EXPECT_TRUE(fs::exists(f.victim / "f"));
  }
}

TEST(RunDir, StrayCarriageReturnIsShownEscaped) {
  RunFixture f;
  f.latest("checkpoints/step-000001\r\n");
  std::string e = error_of([&] { latest_checkpoint_dir(f.run.string()); });
  EXPECT_TRUE(has(e, "checkpoints/step-000001\\r")) << e;
}

TEST(RunDir, SymlinkedCheckpointIntoAnotherRunIsRefused) {
  RunFixture f;
  fs::create_directory_symlink(f.victim, f.run / "checkpoints" / "step-000002");
  f.latest("checkpoints/step-000002\n");
  EXPECT_TRUE(has(error_of([&] { latest_checkpoint_dir(f.run.string()); }), "symlink"));
  f.latest("checkpoints/step-000009\n");
  EXPECT_TRUE(has(error_of([&] { latest_checkpoint_dir(f.run.string()); }), "missing"));
}

TEST(RunDir, SecondLockOnARunFailsAtOnceNamingTheHolder) {
  TempDir tmp;
  RunLock first(tmp.path.string());
  std::string e = error_of([&] { RunLock second(tmp.path.string()); });
  EXPECT_TRUE(has(e, "in use by another trainer")) << e;
  EXPECT_TRUE(has(e, "pid " + std::to_string(::getpid()))) << e;
}

TEST(RunDir, LockIsReleasedWithItsHolder) {
  TempDir tmp;
  { RunLock first(tmp.path.string()); }
  RunLock again(tmp.path.string());  // no throw
  SUCCEED();
}

TEST(RunDir, ExistingRunOutputsAreListed) {
  RunFixture f;
  EXPECT_EQ(existing_run_outputs(f.run.string()), std::vector<std::string>{"checkpoints/step-000001"});
  write_text(f.run / "train_log.jsonl", "");
  EXPECT_EQ(existing_run_outputs(f.run.string()).size(), 2u);
  TempDir empty;
  write_text(empty.path / "train.lock", "pid 1\n");  // a lock left by a run that wrote nothing is no output
  EXPECT_TRUE(existing_run_outputs(empty.path.string()).empty());
}

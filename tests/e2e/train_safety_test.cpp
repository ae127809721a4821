// `hsa train` never destroys what it did not write: a hostile or mistyped `latest`, an existing run, its own
// --init source; it stops on non-finite losses without publishing, says clearly what is wrong with a run it
// cannot resume, holds a lock on its run directory, and cleans up after a failed save.
#include "common/error_text.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "train/run_dir.h"
#include "train/trainer.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace hsa;
using hsa::testing::error_of;
using hsa::testing::has;
namespace fs = std::filesystem;

namespace {

struct Dirs {
  fs::path root;
  explicit Dirs(const std::string& name) : root(fs::temp_directory_path() / ("hsa_safety_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(root);
    fs::create_directories(root);
  }
  ~Dirs() { fs::remove_all(root); }
};

TrainOptions tiny_run(const fs::path& out, int64_t steps = 2) {
  TrainOptions o;
  o.config_path = std::string(HSA_SOURCE_DIR) + "/configs/micro.json";
  o.out_dir = out.string();
  o.tasks = {"passkey"};
  o.batch = 1;
  o.seq_len = 128;  // room for a passkey sample in the training phrasings
  o.steps = steps;
  o.eval_every = 0;
  o.save_every = 0;
  o.quiet = true;
  return o;
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }
std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

template <class Fn> std::string argument_error_of(Fn fn) {
  try {
    fn();
  } catch (const InvalidArgument& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected hsa::InvalidArgument, got: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected hsa::InvalidArgument";
  return "";
}

}  // namespace

TEST(TrainSafety, LatestOutsideTheRunIsNeverDeleted) {
  Dirs d("latest");
  const fs::path victim = d.root / "victim", run = d.root / "r";
  fs::create_directories(victim);
  write_text(victim / "f", "x");
  for (const std::string& latest : {std::string("../victim"), victim.string(), std::string(".")}) {
    fs::remove_all(run);
    fs::create_directories(run);
    write_text(run / "latest", latest + "\n");
    // Without --force the run is refused before anything is written ...
    TrainOptions o = tiny_run(run, 1);
    EXPECT_TRUE(has(argument_error_of([&] { train(o); }), "already holds a run"));
    // ... and with it, the old `latest` is replaced, never followed.
    o.force = true;
    TrainResult r = train(o);
    EXPECT_TRUE(fs::exists(victim / "f")) << latest;
    EXPECT_TRUE(fs::exists(fs::path(r.checkpoint) / "model.safetensors")) << latest;
    EXPECT_EQ(read_text(run / "latest"), "checkpoints/step-000001\n");
  }
}

TEST(TrainSafety, ResumeFromAnotherRunsCheckpointIsRefusedAndItSurvives) {
  Dirs d("other");
  const fs::path a = d.root / "a", b = d.root / "b";
  train(tiny_run(a, 1));
  train(tiny_run(b, 1));
  write_text(b / "latest", "../a/checkpoints/step-000001\n");
  TrainOptions again = tiny_run(b, 3);
  again.resume = true;
  EXPECT_TRUE(has(error_of([&] { train(again); }), "not a checkpoint of this run"));
  EXPECT_TRUE(fs::exists(a / "checkpoints" / "step-000001" / "model.safetensors"));
}

TEST(TrainSafety, ExistingRunAndOwnInitSourceAreNotOverwritten) {
  Dirs d("existing");
  const fs::path run = d.root / "r";
  TrainResult first = train(tiny_run(run, 2));
  const std::string log = read_text(run / "train_log.jsonl");
  std::string e = argument_error_of([&] { train(tiny_run(run, 2)); });
  EXPECT_TRUE(has(e, "--resume") && has(e, "--force")) << e;
  EXPECT_EQ(read_text(run / "train_log.jsonl"), log);
  EXPECT_TRUE(fs::exists(fs::path(first.checkpoint) / "model.safetensors"));

  for (const fs::path& out : {run, run / "next"}) {
    TrainOptions stage = tiny_run(out, 2);
    stage.config_path.clear();
    stage.init_from = run.string();
    stage.force = true;  // not even --force lets a stage write over its own source
    EXPECT_TRUE(has(argument_error_of([&] { train(stage); }), "overlap"));
  }
  EXPECT_EQ(read_text(run / "train_log.jsonl"), log);
  EXPECT_TRUE(fs::exists(fs::path(first.checkpoint) / "model.safetensors"));
}

TEST(TrainSafety, NonFiniteLossStopsWithoutPublishingACheckpoint) {
  Dirs d("nan");
  TrainOptions o = tiny_run(d.root / "lr", 3);
  o.schedule.lr = 1e30;
  o.schedule.warmup_steps = 0;
  o.save_every = 1;
  std::string e = error_of([&] { train(o); });
  EXPECT_TRUE(has(e, "non-finite")) << e;
  // Step 1 may still be finite and saved; what `latest` names must hold finite weights.
  if (fs::exists(d.root / "lr" / "latest")) {
    Checkpoint ck = load_checkpoint(latest_checkpoint_dir((d.root / "lr").string()));
    for (const auto& [name, t] : ck.params)
      for (double v : t.to_vector()) ASSERT_TRUE(std::isfinite(v)) << name;
  }

  // A config that initialises to huge weights: every step is non-finite; skipping some still stops the run.
  nlohmann::json cfg = nlohmann::json::parse(read_text(std::string(HSA_SOURCE_DIR) + "/configs/micro.json"));
  cfg["initializer_range"] = 1e30;
  write_text(d.root / "huge.json", cfg.dump());
  TrainOptions h = tiny_run(d.root / "init", 4);
  h.config_path = (d.root / "huge.json").string();
  h.max_nonfinite_skips = 2;
  e = error_of([&] { train(h); });
  EXPECT_TRUE(has(e, "non-finite") && has(e, "3 such steps")) << e;
  EXPECT_FALSE(fs::exists(d.root / "init" / "latest"));
  EXPECT_TRUE(fs::is_empty(d.root / "init" / "checkpoints"));
}

TEST(TrainSafety, ResumeProblemsAreNamedClearly) {
  Dirs d("resume");
  const fs::path run = d.root / "r";
  TrainResult r = train(tiny_run(run, 2));
  TrainOptions again = tiny_run(run, 4);
  again.resume = true;
  const std::string weights = (fs::path(r.checkpoint) / "model.safetensors").string();
  const std::string original = read_text(weights);
  auto with_metadata = [&](std::map<std::string, std::string> meta) {
    SafetensorsFile f = load_safetensors(weights);
    std::map<std::string, Tensor> copies;
    for (const auto& [name, t] : f.tensors) copies[name] = t.clone();
    save_safetensors(weights, copies, meta);
  };
  with_metadata({{"step", "abc"}});
  EXPECT_TRUE(has(error_of([&] { train(again); }), "step \"abc\" in its metadata"));
  with_metadata({});
  EXPECT_TRUE(has(error_of([&] { train(again); }), "no 'step' in its metadata"));
  write_text(weights, original);

  const std::string options = read_text(run / "train_options.json");
  write_text(run / "train_options.json", "{\"batch\": \"x\"}");
  EXPECT_TRUE(has(error_of([&] { train(again); }), "train_options.json"));
  write_text(run / "train_options.json", options);

  // Already past --steps: refused, nothing changes.
  TrainOptions past = again;
  past.steps = 1;
  EXPECT_TRUE(has(argument_error_of([&] { train(past); }), "at step 2 already"));
  past.steps = 2;  // exactly there: nothing to do, not an error (scripts rerun finished stages)
  EXPECT_EQ(train(past).final_step, 2);

  TrainOptions missing = again;
  missing.out_dir = (d.root / "nope").string();
  EXPECT_TRUE(has(argument_error_of([&] { train(missing); }), "no such directory"));
  EXPECT_FALSE(fs::exists(d.root / "nope"));

  EXPECT_EQ(train(again).final_step, 4);  // the run itself is fine
}

TEST(TrainSafety, NonsenseOptionsAreRejectedBeforeAnythingRuns) {
  Dirs d("options");
  struct Case {
    void (*edit)(TrainOptions&);
    const char* flag;
  };
  const Case cases[] = {
      {[](TrainOptions& o) { o.schedule.lr = -1; }, "--lr must be a finite number > 0, got -1"},
      {[](TrainOptions& o) { o.eval_batches = 0; }, "--eval-batches"},
      {[](TrainOptions& o) { o.schedule.warmup_steps = -5; }, "--warmup"},
      {[](TrainOptions& o) { o.schedule.min_lr_ratio = 5; }, "--min-lr-ratio"},
      {[](TrainOptions& o) { o.clip = -1; }, "--clip"},
      {[](TrainOptions& o) { o.save_every = -1; }, "--save-every"},
      {[](TrainOptions& o) { o.stop_after = -1; }, "--stop-after"},
      {[](TrainOptions& o) { o.batch = 0; }, "--batch"},
      {[](TrainOptions& o) { o.max_nonfinite_skips = -1; }, "--max-nonfinite-skips"},
  };
  for (const Case& c : cases) {
    TrainOptions o = tiny_run(d.root / "r");
    c.edit(o);
    std::string e = argument_error_of([&] { train(o); });
    EXPECT_TRUE(has(e, c.flag)) << e;
    EXPECT_FALSE(fs::exists(d.root / "r")) << c.flag;
  }
}

TEST(TrainSafety, SecondTrainerOnARunFailsAtOnce) {
  Dirs d("lock");
  fs::create_directories(d.root / "r");
  RunLock held((d.root / "r").string());
  std::string e = error_of([&] { train(tiny_run(d.root / "r")); });
  EXPECT_TRUE(has(e, "in use by another trainer (pid ")) << e;
  EXPECT_FALSE(fs::exists(d.root / "r" / "train_log.jsonl"));
}

TEST(TrainSafety, FailedSaveLeavesNoTmpDirectoryAndNoLatest) {
  Dirs d("diskfull");
  // A file-size limit stands in for a full disk: the weights cannot be written, the small log still can.
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 16 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string e = error_of([&] { train(tiny_run(d.root / "r", 1)); });
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, previous_handler);
  EXPECT_TRUE(has(e, "saving checkpoint")) << e;
  EXPECT_FALSE(fs::exists(d.root / "r" / "latest"));
  for (const auto& entry : fs::directory_iterator(d.root / "r" / "checkpoints"))
    ADD_FAILURE() << "left behind: " << entry.path();
}

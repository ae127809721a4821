// The `hsa` command as a user meets it: one exit-code rule (2 for a rejected argument or value, 1 for a runtime
// failure) with a message naming the flag or file, and outputs that are never replaced without --force.
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/param_spec.h"
#include "model/tensor_map.h"
#include "train/run_dir.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace hsa;
namespace fs = std::filesystem;

namespace {

struct CliRun {
  int code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `hsa ARGS` through the shell (`prefix` may set limits first); the shell runs in the repository root.
CliRun hsa_cli(const std::string& args, const std::string& prefix = "") {
  const std::string command = "cd '" HSA_SOURCE_DIR "' && " + prefix + " '" HSA_CLI_PATH "' " + args + " 2>&1";
  CliRun r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct Dir {
  fs::path path;
  explicit Dir(const std::string& name) : path(fs::temp_directory_path() / ("hsa_cli_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Dir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const std::string kModel = "models/passkey-tiny";

}  // namespace

TEST(Cli, RejectedArgumentsAndValuesExitTwoNamingTheFlag) {
  struct Case {
    std::string args, names;
  };
  const Case cases[] = {
      {"frobnicate", "unknown command 'frobnicate'"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey -b 0", "--batch"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --lr -1", "--lr"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --warmup -5", "--warmup"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --min-lr-ratio 5", "--min-lr-ratio"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --clip -1", "--clip"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --save-every -1", "--save-every"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --stop-after -1", "--stop-after"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --eval-batches 0", "--eval-batches"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --seed -1", "--seed"},
      {"train -o /tmp/hsa_cli_never --resume", "no such directory"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task nope", "--task"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --data README.md --task-share 1",
       "--task-share"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --answer-share 1", "--answer-share"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --task-share 0.5", "--task-share"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --answer-only --answer-share 0.5",
       "--answer-share"},
      {"train -c configs/micro.json -o /tmp/hsa_cli_never --task passkey --filler /nonexistent/filler.txt",
       "--filler"},
      {"generate -m " + kModel + " -p hi -n -5", "--max-new-tokens"},
      {"generate -m " + kModel + " -p hi -f README.md", "--prompt excludes --file"},
      {"generate -m " + kModel + " -p hi --seed -1", "--seed"},
      {"generate -m " + kModel + " -p hi --segment 0", "--segment"},
      {"generate -m " + kModel + " -p hi -t -1", "--temperature"},
      {"generate -m " + kModel + " -p hi --top-p 2", "--top-p"},
      {"generate -m " + kModel + " -p hi --memory-budget 0", "--memory-budget"},
      {"generate -m " + kModel + " -p hi --memory-budget 1M --disk-dir /nonexistent/hsa", "--disk-dir"},
      {"generate -m " + kModel + " -p hi --host-budget 1M", "--host-budget"},
      {"info -c configs/tiny.json --context 0", "--context"},
      {"demo -n -1", "--samples"},
      {"info -c configs/tiny.json --dtype i32", "--dtype"},
      {"ruler -m " + kModel + " --lengths 0", "--lengths"},
      {"ruler -m " + kModel + " -n 0", "--samples"},
      {"ruler -m " + kModel + " --tasks vt,vt --lengths 1024", "vt twice"},
      {"ruler -m " + kModel + " --tasks niah_single_1 --lengths 256", "--lengths"},
  };
  for (const Case& c : cases) {
    CliRun r = hsa_cli(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_TRUE(has(r.output, c.names)) << c.args << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists("/tmp/hsa_cli_never"));
}

TEST(Cli, RuntimeFailuresExitOne) {
  Dir d("runtime");
  // Sizes each in range whose parameters cannot be allocated: an error that says so, not a crash.
  nlohmann::json cfg = nlohmann::json::parse(read_text(HSA_SOURCE_DIR "/configs/micro.json"));
  cfg["hidden_size"] = int64_t(1) << 23;
  cfg["vocab_size"] = int64_t(1) << 23;
  std::ofstream(d / "huge.json") << cfg.dump();
  CliRun r = hsa_cli("train -c " + (d / "huge.json") + " -o " + (d / "run") + " --task passkey -b 1 -L 64 -s 1 -q");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "out of")) << r.output;
  // Memory running out in a standard container (std::bad_alloc) says so in words, not as an exception's name.
  r = hsa_cli("data sample -t passkey -n 1000000000 --prompt-only", "ulimit -v 2000000;");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "out of memory")) << r.output;
  EXPECT_FALSE(has(r.output, "bad_alloc")) << r.output;
  // A size that overflows a byte count is a config error, also in `info`.
  cfg["hidden_size"] = int64_t(1) << 62;
  std::ofstream(d / "overflow.json") << cfg.dump();
  r = hsa_cli("info -c " + (d / "overflow.json"));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "'hidden_size' is 4611686018427387904")) << r.output;
}

TEST(Cli, GenerateOnANonFiniteModelFailsInsteadOfPrintingGarbage) {
  Dir d("nan");
  ModelConfig c = ModelConfig::from_file(HSA_SOURCE_DIR "/configs/micro.json");
  auto params = init_parameters(c, 1);
  params.at("final_norm.weight").fill(NAN);
  save_checkpoint(d / "ck", c, params);
  CliRun r = hsa_cli("generate -m " + (d / "ck") + " -p hello -n 4 -q");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "non-finite")) << r.output;
  EXPECT_EQ(r.output.find('\0'), std::string::npos);
}

TEST(Cli, ExportDoesNotReplaceAnExistingDirectoryWithoutForce) {
  Dir d("export");
  fs::create_directories(d / "other");
  std::ofstream(d / "other/config.json") << "{}";
  std::ofstream(d / "other/train_log.jsonl") << "{\"step\": 1}\n";
  CliRun r = hsa_cli("export -m " + kModel + " -o " + (d / "other"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "--force")) << r.output;
  EXPECT_EQ(read_text(d / "other/config.json"), "{}");
  // --force replaces the whole checkpoint: no stale log of the old model beside the new weights.
  r = hsa_cli("export -m " + kModel + " -o " + (d / "other") + " --force");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(d / "other/model.safetensors"));
  EXPECT_FALSE(fs::exists(d / "other/train_log.jsonl"));
  // --force replaces checkpoints only.
  fs::create_directories(d / "notes");
  std::ofstream(d / "notes/todo.txt") << "keep";
  r = hsa_cli("export -m " + kModel + " -o " + (d / "notes") + " --force");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(read_text(d / "notes/todo.txt"), "keep");
}

TEST(Cli, DataBuildDoesNotOverwriteItsInput) {
  Dir d("data");
  std::ofstream(d / "corpus.txt") << "some text\n";
  CliRun r = hsa_cli("data build -i " + (d / "corpus.txt") + " -o " + (d / "corpus.txt"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(read_text(d / "corpus.txt"), "some text\n");
  EXPECT_EQ(hsa_cli("data build -i " + (d / "corpus.txt") + " -o " + (d / "c.tok")).code, 0);
  r = hsa_cli("data build -i " + (d / "corpus.txt") + " -o " + (d / "c.tok"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(hsa_cli("data build -i " + (d / "corpus.txt") + " -o " + (d / "c.tok") + " --force").code, 0);
}

// `data filler` and `data corpus` write fixed names into --out: a file of that name already there is kept.
TEST(Cli, DataFillerAndCorpusKeepExistingFilesWithoutForce) {
  Dir d("filler");
  std::ofstream(d / "filler-eval.txt") << "my own notes\n";
  std::ofstream(d / "manifest.json") << "{}\n";
  for (const std::string command : {"filler", "corpus"}) {
    CliRun r = hsa_cli("data " + command + " -o " + d.path.string() + " --root " + (d / "no-packages"));
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_TRUE(has(r.output, "--force")) << r.output;
  }
  EXPECT_EQ(read_text(d / "filler-eval.txt"), "my own notes\n");
  EXPECT_EQ(read_text(d / "manifest.json"), "{}\n");
}

TEST(Cli, RulerKeepsEverySampleWhenTheDiskFillsAndResumesWithoutRedoingThem) {
  Dir d("ruler");
  const std::string args = "ruler -m " + kModel + " --tasks niah_single_1 --lengths 512 -n 6 --max-new-tokens 8 -o " +
                           (d / "out");
  // A 1 KiB file-size limit (2 blocks of 512 bytes in sh) stands in for a disk that fills during the run.
  CliRun r = hsa_cli(args, "trap '' XFSZ; ulimit -f 2;");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "--resume")) << r.output;
  int records = 0;
  {
    std::ifstream in(d / "out/ruler.jsonl");
    for (std::string line; std::getline(in, line);)
      records += nlohmann::json::parse(line, nullptr, false).contains("score");
  }
  EXPECT_GT(records, 0);
  EXPECT_LT(records, 6);
  // Without --resume or --force the recorded run is not replaced.
  EXPECT_EQ(hsa_cli(args).code, 2);
  r = hsa_cli(args + " --resume");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "resuming: " + std::to_string(records) + " samples already recorded")) << r.output;
  nlohmann::json report = nlohmann::json::parse(read_text(d / "out/ruler.json"));
  EXPECT_EQ(report["records"].size(), 6u);
}

TEST(Cli, ExportWritesShardsUnderTheLimitThatInfoAndGenerateLoad) {
  Dir d("export_shards");
  CliRun r = hsa_cli("export -m " + kModel + " -o " + (d / "sharded") + " --dtype bf16 --max-shard-mb 1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(d / "sharded/model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(d / "sharded/model.safetensors"));
  std::string second_shard;  // model-00002-of-0000N.safetensors
  for (const auto& entry : fs::directory_iterator(d / "sharded")) {
    EXPECT_LE(fs::file_size(entry.path()), 1u << 20) << entry.path();
    if (entry.path().filename().string().rfind("model-00002-of-", 0) == 0) second_shard = entry.path().filename();
  }
  ASSERT_FALSE(second_shard.empty()) << "the shipped model should need several 1 MiB shards";
  r = hsa_cli("info -m " + (d / "sharded"));
  EXPECT_EQ(r.code, 0) << r.output;
  CliRun whole = hsa_cli("export -m " + kModel + " -o " + (d / "whole") + " --dtype bf16");
  ASSERT_EQ(whole.code, 0) << whole.output;
  whole = hsa_cli("generate -m " + (d / "whole") + " -p hello -n 8 -q");
  r = hsa_cli("generate -m " + (d / "sharded") + " -p hello -n 8 -q");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.substr(0, r.output.find('\n')), whole.output.substr(0, whole.output.find('\n')));  // the text
  // A missing shard is a runtime failure naming it.
  fs::remove(d / ("sharded/" + second_shard));
  r = hsa_cli("info -m " + (d / "sharded"));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(has(r.output, second_shard)) << r.output;
  r = hsa_cli("export -m " + kModel + " -o " + (d / "bad") + " --max-shard-mb 0");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "--max-shard-mb")) << r.output;
}

// Chunk memory tiers from the command line: a RAM budget of nothing puts every page in a file under --disk-dir;
// the text generated is the same, the tiers are reported, and the directory is left as it was found.
TEST(Cli, GenerateWithADiskTierWritesTheSameTextAndCleansUp) {
  Dir d("tiers");
  std::ofstream(d / "mine.txt") << "not the program's";
  std::string prompt;
  for (int i = 0; i < 12; ++i) prompt += "the quick brown fox jumps over the lazy dog. ";
  const std::string args = "generate -m " + kModel + " -p '" + prompt + "' -n 12 --segment 100";
  CliRun resident = hsa_cli(args + " -q");
  ASSERT_EQ(resident.code, 0) << resident.output;
  CliRun tiered = hsa_cli(args + " -q --memory-budget 1 --disk-dir " + d.path.string());
  ASSERT_EQ(tiered.code, 0) << tiered.output;
  EXPECT_EQ(tiered.output.substr(0, tiered.output.find('\n')), resident.output.substr(0, resident.output.find('\n')));
  EXPECT_TRUE(has(tiered.output, "chunk memory tiers: RAM 0 chunks (0 B), disk 17 chunks")) << tiered.output;
  EXPECT_EQ(std::distance(fs::directory_iterator(d.path), {}), 1);
  EXPECT_EQ(read_text(d / "mine.txt"), "not the program's");
  // Too little memory and no disk tier: refused before the prefill, in one line.
  CliRun refused = hsa_cli(args + " -q --memory-budget 1");
  EXPECT_EQ(refused.code, 1) << refused.output;
  EXPECT_TRUE(has(refused.output, "fit in no tier")) << refused.output;
  // hsa info prints the plan per tier.
  CliRun info = hsa_cli("info -c configs/tiny.json --context 65536 --memory-budget 1M --disk-dir " + d.path.string());
  EXPECT_EQ(info.code, 0) << info.output;
  EXPECT_TRUE(has(info.output, "chunk memory for 65536 positions (2048 chunks")) << info.output;
  EXPECT_TRUE(has(info.output, "K/V disk")) << info.output;
}

// A loaded state's positions count in the memory plan, not just the new prompt's: with too small a RAM budget the
// run is refused by the plan (naming every position it must hold) instead of failing inside the session, and with
// a disk tier the loaded chunks go there and the text is the one generated with the whole memory in RAM.
TEST(Cli, GenerateFromALoadedStatePlansForItsPositions) {
  Dir d("loaded");
  std::string context;
  for (int i = 0; i < 12; ++i) context += "the quick brown fox jumps over the lazy dog. ";
  CliRun saved = hsa_cli("generate -m " + kModel + " -p '" + context + "' -n 1 -q --save-state " + (d / "s.bin"));
  ASSERT_EQ(saved.code, 0) << saved.output;
  const std::string load = "generate -m " + kModel + " --load-state " + (d / "s.bin") + " -p ' what' -n 8";
  CliRun resident = hsa_cli(load);
  ASSERT_EQ(resident.code, 0) << resident.output;
  // 541 loaded positions (<bos> and 540 bytes), 5 more of the prompt (its <bos> is the state's), 8 new.
  EXPECT_TRUE(has(resident.output, "for 554 positions (541 of them in the loaded state)")) << resident.output;
  CliRun refused = hsa_cli(load + " --memory-budget 1");
  EXPECT_EQ(refused.code, 1) << refused.output;
  EXPECT_TRUE(has(refused.output, "generate: 17 chunks of the chunk memory fit in no tier (554 positions)"))
      << refused.output;
  EXPECT_FALSE(has(refused.output, "loaded state of")) << "refused only after loading:\n" << refused.output;
  fs::create_directories(d / "pages");
  CliRun tiered = hsa_cli(load + " --memory-budget 1 --disk-dir " + (d / "pages"));
  ASSERT_EQ(tiered.code, 0) << tiered.output;
  EXPECT_TRUE(has(tiered.output, "chunk memory tiers: RAM 0 chunks (0 B), disk 17 chunks")) << tiered.output;
  auto text = [](const std::string& out) {  // the generated line: after the last progress line, before the stats
    const size_t end = out.find("\nprompt: "), begin = out.rfind('\n', end - 1) + 1;
    return end == std::string::npos ? std::string() : out.substr(begin, end - begin);
  };
  EXPECT_FALSE(text(resident.output).empty()) << resident.output;
  EXPECT_EQ(text(tiered.output), text(resident.output));
  EXPECT_TRUE(fs::is_empty(d / "pages"));
}

// `train --init DIR --config FILE`: the config replaces the checkpoint's (here: retrieval norm and the chunk
// encoder on). Shared parameters are kept bit-exact (an lr far below f32's resolution leaves them untouched),
// the new ones are drawn from init_parameters and listed; a shape mismatch or a dropped parameter is refused with
// exit 2 before the run directory exists.
TEST(Cli, TrainInitWithANewConfigKeepsSharedParametersAndDrawsNewOnes) {
  Dir d("init_config");
  const std::string common = " --task passkey -b 1 -L 128 -s 1 --save-every 1 --eval-every 0 -q";
  CliRun r = hsa_cli("train -c configs/micro.json -o " + (d / "base") + common);
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json micro = nlohmann::json::parse(read_text(HSA_SOURCE_DIR "/configs/micro.json"));
  nlohmann::json rn = micro;
  rn["hsa_retrieval_norm"] = true;
  rn["chunk_encoder_layers"] = 1;
  std::ofstream(d / "rn.json") << rn.dump();
  r = hsa_cli("train --init " + (d / "base") + " --config " + (d / "rn.json") + " -o " + (d / "rn") + common +
              " --lr 1e-30 --seed 5");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "drawn fresh")) << r.output;
  const Checkpoint base = load_checkpoint(latest_checkpoint_dir(d / "base"));
  const Checkpoint stage = load_checkpoint(latest_checkpoint_dir(d / "rn"));
  EXPECT_TRUE(stage.config.hsa_retrieval_norm);
  EXPECT_EQ(stage.config.chunk_encoder_layers, 1);
  EXPECT_EQ(stage.config.tokenizer, base.config.tokenizer);
  const ModelConfig rn_config = ModelConfig::from_json(rn);
  const TensorMap fresh = init_parameters(rn_config, 5);
  int64_t added = 0;
  for (const ParamSpec& s : model_param_specs(rn_config)) {
    const Tensor& got = stage.params.at(s.name);
    if (base.params.count(s.name)) {
      EXPECT_EQ(got.to_vector(), base.params.at(s.name).to_vector()) << s.name;
    } else {
      ++added;
      EXPECT_TRUE(has(r.output, s.name)) << s.name << " not listed:\n" << r.output;
      EXPECT_EQ(got.to_vector(), fresh.at(s.name).to_vector()) << s.name;
    }
  }
  EXPECT_GT(added, 3);  // the retrieval norms, [CLS], the encoder block
  EXPECT_TRUE(has(r.output, "memory.landmark_norm.weight")) << r.output;

  // A parameter of both with another shape; a parameter the new config drops.
  nlohmann::json wide = micro, no_qk = micro;
  wide["intermediate_size"] = 48;
  no_qk["hsa_qk_norm"] = false;
  std::ofstream(d / "wide.json") << wide.dump();
  std::ofstream(d / "no_qk.json") << no_qk.dump();
  r = hsa_cli("train --init " + (d / "base") + " --config " + (d / "wide.json") + " -o " + (d / "wide") + common);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "'layers.0.ffn.gate_proj.weight' has shape [64, 32]")) << r.output;
  EXPECT_TRUE(has(r.output, "[48, 32] in --config")) << r.output;
  EXPECT_FALSE(fs::exists(d / "wide"));
  r = hsa_cli("train --init " + (d / "base") + " --config " + (d / "no_qk.json") + " -o " + (d / "no_qk") + common);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "has no parameter 'layers.1.hsa.q_norm.weight'")) << r.output;
  EXPECT_FALSE(fs::exists(d / "no_qk"));
}

// hsa eval retrieval: its bad flags and values exit 2 naming them; a short run writes the report, prints the
// table, and an existing report is replaced only with --force.
TEST(Cli, EvalRetrievalChecksItsFlagsAndWritesItsReport) {
  Dir d("retrieval");
  const std::string run = "eval retrieval -m " + kModel + " -o " + (d / "out");
  const std::pair<std::string, std::string> bad[] = {
      {run + " --tasks nope", "--tasks"},
      {run + " --tasks passkey,passkey", "passkey twice"},
      {run + " --tasks kv_lookup", "--phrasings"},
      {run + " --lengths 0", "--lengths"},
      {run + " --lengths 4096,1024", "--lengths must be increasing"},
      {run + " --lengths 16", "--lengths 16"},
      {run + " -n 0", "--samples"},
      {run + " --segment 0", "--segment"},
      {run + " --phrasings fancy", "--phrasings"},
      {"eval retrieval --tasks passkey", "-m"},
  };
  for (const auto& [args, names] : bad) {
    CliRun r = hsa_cli(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_TRUE(has(r.output, names)) << args << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(d / "out"));
  const std::string ok = run + " --tasks passkey --lengths 512 -n 1";
  CliRun r = hsa_cli(ok);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "| passkey | 512 | 2 | 0 | 1 |")) << r.output;
  const nlohmann::json j = nlohmann::json::parse(read_text(d / "out/retrieval.json"));
  EXPECT_EQ(j["topk"], 4);
  EXPECT_EQ(j["phrasings"], "legacy");
  EXPECT_EQ(j["groups"][0]["cells"].size(), 4u);
  EXPECT_TRUE(has(read_text(d / "out/retrieval.md"), "| passkey | 512 |"));
  r = hsa_cli(ok);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "--force")) << r.output;
  EXPECT_EQ(hsa_cli(ok + " --force").code, 0);
}

#include "train/trainer.h"

#include "dist/communicator.h"
#include "dist/grad_sync.h"
#include "dist/sharded_adamw.h"
#include "model/placement.h"
#include "model/checkpoint.h"
#include "util/file_util.h"
#include "model/model.h"
#include "model/param_spec.h"
#include "model/safetensors.h"
#include "train/batches.h"
#include "train/init_config.h"
#include "train/reinit.h"
#include "train/run_dir.h"
#include "util/json_util.h"
#include "text/filler.h"
#include "util/progress.h"
#include "text/tasks.h"
#include "train/train_step.h"
#include "text/token_shard.h"
#include "text/tokenizer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <exception>
#include <memory>
#include <optional>

namespace hsa {

namespace fs = std::filesystem;

std::string resolve_checkpoint_dir(const std::string& path) {
  fs::path p(path);
  if (fs::exists(fs::symlink_status(p / "latest"))) return latest_checkpoint_dir(path);
  HSA_CHECK(fs::exists(p / "config.json"), "{}: not a checkpoint (no config.json) and not a run directory (no latest)",
            path);
  return p.string();
}

// What the data options ask must make sense together; checked before the run directory is touched (and again
// for the recipe a resume reads back).
void check_data_options(const TrainOptions& o) {
  if (o.data_path.empty() && o.tasks.empty()) fail_argument("train: give --data (a token shard), --task, or both");
  const bool mixture = !o.data_path.empty() && !o.tasks.empty();
  if (o.task_share >= 0 && !mixture) fail_argument("train: --task-share needs both --data and --task");
  if (o.task_share >= 0 && !(o.task_share > 0 && o.task_share < 1))
    fail_argument("train: --task-share must be in (0, 1), got {}", o.task_share);
  if (!(o.answer_weight > 0)) fail_argument("train: --answer-weight must be > 0, got {}", o.answer_weight);
  if (!(o.answer_share >= 0 && o.answer_share < 1))
    fail_argument("train: --answer-share must be in [0, 1), got {}", o.answer_share);
  if (o.answer_share > 0 && o.tasks.empty()) fail_argument("train: --answer-share needs --task");
  if (o.answer_share > 0 && o.answer_only_loss)
    fail_argument("train: --answer-share and --answer-only do not mix (with --answer-only the answers are the "
                  "whole loss)");
  if (!o.eval_data_path.empty() && o.data_path.empty()) fail_argument("train: --eval-data needs --data");
}

void validate_train_options(const TrainOptions& o) {
  auto positive = [](const char* flag, int64_t v) {
    if (v <= 0) fail_argument("train: {} must be > 0, got {}", flag, v);
  };
  auto non_negative = [](const char* flag, double v) {
    if (!(v >= 0) || !std::isfinite(v)) fail_argument("train: {} must be a finite number >= 0, got {}", flag, v);
  };
  positive("--batch", o.batch);
  positive("--seq-len", o.seq_len);
  positive("--steps", o.steps);
  positive("--accum", o.grad_accum);
  positive("--eval-batches", o.eval_batches);
  if (!(o.schedule.lr > 0) || !std::isfinite(o.schedule.lr))
    fail_argument("train: --lr must be a finite number > 0, got {}", o.schedule.lr);
  non_negative("--warmup", double(o.schedule.warmup_steps));
  if (!(o.schedule.min_lr_ratio >= 0 && o.schedule.min_lr_ratio <= 1))
    fail_argument("train: --min-lr-ratio must be in [0, 1], got {}", o.schedule.min_lr_ratio);
  non_negative("--weight-decay", o.weight_decay);
  non_negative("--clip", o.clip);
  non_negative("--eval-every", double(o.eval_every));
  non_negative("--save-every", double(o.save_every));
  non_negative("--stop-after", double(o.stop_after));
  non_negative("--max-nonfinite-skips", double(o.max_nonfinite_skips));
  if (o.resume && o.force) fail_argument("train: --resume continues a run and --force replaces it; give one");
  if (!o.reinit.empty() && (o.resume || o.init_from.empty()))
    fail_argument("train: --reinit re-draws parameters of the --init checkpoint; give --init (and not --resume)");
  if (!o.resume) check_data_options(o);
  if (!o.resume && o.init_from.empty() && o.config_path.empty())
    fail_argument("train: give --config (a model config JSON) or --init (a checkpoint)");
  dist::check_backend_name(o.dist);
  if (!(o.dist_timeout_s > 0) || !std::isfinite(o.dist_timeout_s))
    fail_argument("train: --dist-timeout must be a finite number of seconds > 0, got {}", o.dist_timeout_s);
}

namespace {

// Everything a batch source borrows lives here, so the source can be rebuilt for eval.
struct DataSetup {
  std::unique_ptr<TokenShard> shard, eval_shard;
  TaskRows tasks;        // the training source's (its tokenizer is used from the prefetch thread)
  TaskRows eval_tasks;   // the same, with a tokenizer of its own for the eval sources
  double task_share = 0;  // 0: language modelling only, 1: tasks only

  // The training source (prefetching); eval sources: the same mixture, language-model windows only (of the
  // eval shard when given), or task rows only.
  std::unique_ptr<BatchSource> make_train(const TrainOptions& o, RankRows rank_rows) const {
    return prefetch_batches(
        make_mixture_batches(shard.get(), tasks, task_share, o.batch, o.seq_len, o.seed, rank_rows));
  }
  std::unique_ptr<BatchSource> make(const TrainOptions& o, uint64_t seed) const {
    return make_mixture_batches(shard.get(), eval_tasks, task_share, o.batch, o.seq_len, seed);
  }
  std::unique_ptr<BatchSource> make_lm(const TrainOptions& o, uint64_t seed) const {
    return make_mixture_batches(eval_shard ? eval_shard.get() : shard.get(), eval_tasks, 0.0, o.batch, o.seq_len,
                                seed);
  }
  std::unique_ptr<BatchSource> make_tasks(const TrainOptions& o, uint64_t seed, Phrasings phrasings) const {
    TaskRows rows = eval_tasks;
    rows.phrasings = phrasings;
    return make_mixture_batches(nullptr, rows, 1.0, o.batch, o.seq_len, seed);
  }
};

DataSetup setup_data(const TrainOptions& o) {
  DataSetup d;
  check_data_options(o);  // again: a resume reads them from the run
  d.task_share = o.tasks.empty() ? 0.0 : o.data_path.empty() ? 1.0 : o.task_share < 0 ? 0.2 : o.task_share;
  if (!o.data_path.empty()) d.shard = std::make_unique<TokenShard>(TokenShard::open(o.data_path));
  if (!o.eval_data_path.empty()) d.eval_shard = std::make_unique<TokenShard>(TokenShard::open(o.eval_data_path));
  for (const std::string& t : o.tasks) d.tasks.kinds.push_back(parse_task_kind(t));
  d.tasks.phrasings = parse_phrasings(o.phrasings);
  HSA_CHECK(d.tasks.phrasings != Phrasings::eval, "train: --phrasings eval is the held-out pool: train on 'train'");
  d.tasks.answer_only_loss = o.answer_only_loss;
  d.tasks.answer_weight = o.answer_weight;
  d.tasks.answer_share = o.answer_share;
  if (!o.filler_path.empty()) {
    std::ifstream in(o.filler_path);
    HSA_CHECK(in.good(), "train: cannot read filler corpus {}", o.filler_path);
    d.tasks.filler = FillerText(std::string(std::istreambuf_iterator<char>(in), {}));
  }
  return d;
}

// A checkpoint's weights as the f32 master on `device`, owning their memory: a mapped checkpoint file may be
// rewritten while we train, so tensors that convert() would share with it are cloned.
TensorMap master_from(const TensorMap& params, Device device) {
  TensorMap master = convert(params, device, DType::f32);
  for (auto& [name, t] : master)
    if (t.raw_data() == params.at(name).raw_data()) t = t.clone();
  return master;
}

// Mean loss of eval_batches batches of `source` (answer tokens only with `answers`).
double mean_loss(const Model& model, BatchSource& source, int64_t batches, bool answers) {
  double total = 0;
  for (int64_t i = 0; i < batches; ++i) {
    Batch b = source.next();
    total += answers ? answer_loss(model, b).loss : run_batch(model, b, nullptr, 0).loss;
  }
  return total / double(std::max<int64_t>(1, batches));
}

// eval_loss: the training objective on held-back rows. With a mixture also eval_lm_loss (language-model
// windows, of --eval-data when given) and eval_task_loss (answer tokens of task rows); with pooled phrasings
// eval_heldout_task_loss (answer tokens, eval-pool phrasings the run never trains on).
void evaluate(const Model& model, const DataSetup& data, const TrainOptions& o, nlohmann::json& line) {
  const uint64_t seed = o.seed ^ 0xe7a1e7a1ull;
  line["eval_loss"] = mean_loss(model, *data.make(o, seed), o.eval_batches, false);
  if (data.shard && (data.task_share > 0 || data.eval_shard))
    line["eval_lm_loss"] = mean_loss(model, *data.make_lm(o, seed), o.eval_batches, false);
  if (data.task_share > 0) {
    line["eval_task_loss"] = mean_loss(model, *data.make_tasks(o, seed, data.tasks.phrasings), o.eval_batches, true);
    // Held-out keys and values (uuids) are longer: at short lengths some tasks do not fit, and the run goes on
    // without this number.
    if (data.tasks.phrasings == Phrasings::train) try {
        line["eval_heldout_task_loss"] =
            mean_loss(model, *data.make_tasks(o, seed, Phrasings::eval), o.eval_batches, true);
      } catch (const Error&) {
      }
  }
}

bool all_finite(const TensorMap& tensors) {
  for (const auto& [name, t] : tensors) {
    Tensor host = t.to(Device::cpu).contiguous();
    for (double v : host.to_vector())
      if (!std::isfinite(v)) return false;
  }
  return true;
}

// Writes checkpoints/step-N completely under a .tmp name, renames it into place and publishes it in `latest`;
// then removes `previous` (the checkpoint this run published before, or resumed from: never one it did not
// write). A failed save removes its .tmp directory and leaves `latest` as it was.
std::string save_train_checkpoint(const fs::path& out, const ModelConfig& config, const TensorMap& master,
                                  const TensorMap& optimizer_state, int64_t step, uint64_t data_position,
                                  const std::string& tokenizer_file, std::string& previous) {
  HSA_CHECK(all_finite(master),
            "train: the parameters hold non-finite values at step {}; not saving them (the last good checkpoint, "
            "if any, stays in {}/latest); lower --lr or check the config's initializer_range",
            step, out.string());
  std::string name = fmt::format("checkpoints/step-{:06d}", step);
  fs::path final_dir = out / name, tmp_dir = out / (name + ".tmp");
  try {
    fs::remove_all(tmp_dir);
    std::map<std::string, std::string> meta{{"step", std::to_string(step)},
                                            {"data_position", std::to_string(data_position)}};
    save_checkpoint(tmp_dir.string(), config, master, meta, tokenizer_file);
    save_safetensors((tmp_dir / "optimizer.safetensors").string(), optimizer_state, meta);
    fs::remove_all(final_dir);  // an orphan of an interrupted save of this run (a fresh run refuses a used --out)
    fs::rename(tmp_dir, final_dir);
    write_file_atomic((out / "latest").string(), name + "\n");
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(tmp_dir, ignored);
    fail("train: saving checkpoint {} failed: {}", (out / name).string(), e.what());
  }
  if (!previous.empty() && previous != name) {
    std::error_code ignored;
    fs::remove_all(out / previous, ignored);
  }
  previous = name;
  return final_dir.string();
}

// Keeps the log lines up to `step` (a resumed run rewrites what came after) and returns their losses.
std::vector<double> truncate_log(const fs::path& log_path, int64_t step) {
  std::vector<double> losses;
  if (!fs::exists(log_path)) return losses;
  std::ifstream in(log_path);
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("step", int64_t(0)) > step) continue;
    if (j.contains("skipped")) losses.push_back(NAN);  // a non-finite step, logged without its loss
    else if (j.contains("loss") && j["loss"].is_number()) losses.push_back(j["loss"].get<double>());
    kept += line + "\n";
  }
  write_file_atomic(log_path.string(), kept);
  return losses;
}

}  // namespace

namespace {

// The run's recipe, saved beside its checkpoints so that `--resume` needs nothing but the run directory.
nlohmann::json options_to_json(const TrainOptions& o) {
  return {{"config_path", o.config_path}, {"init_from", o.init_from}, {"reinit", o.reinit}, {"tasks", o.tasks},
          {"data_path", o.data_path},     {"filler_path", o.filler_path},
          {"answer_only_loss", o.answer_only_loss}, {"batch", o.batch},
          {"seq_len", o.seq_len},         {"grad_accum", o.grad_accum},
          {"lr", o.schedule.lr},          {"min_lr_ratio", o.schedule.min_lr_ratio},
          {"warmup_steps", o.schedule.warmup_steps}, {"weight_decay", o.weight_decay},
          {"clip", o.clip},               {"eval_every", o.eval_every},
          {"eval_batches", o.eval_batches}, {"save_every", o.save_every},
          {"seed", o.seed},               {"tokenizer_path", o.tokenizer_path}};
}

// The number of processes a run trains on: each draws `batch` rows of every global batch, so a resume on
// another number would change the batch (and the rows) mid-run. Runs saved before it was recorded had one.
void check_world_size(const TrainOptions& given, int world_size) {
  const fs::path path = fs::path(given.out_dir) / "train_options.json";
  if (!fs::exists(path)) return;
  const nlohmann::json j =
      parse_json_strict(read_regular_file(path.string(), "train options"), "train: " + path.string());
  const int64_t saved = j.value("world_size", int64_t(1));
  if (saved != world_size)
    fail_argument("train --resume: {} was trained on {} process{} and this launch has {}; relaunch it with {} (the "
                  "global batch is --batch x processes)",
                  given.out_dir, saved, saved == 1 ? "" : "es", world_size, saved);
}

// The mixture's part of the recipe (runs saved before it existed lack these keys: resumed_options defaults them).
nlohmann::json mixture_options_json(const TrainOptions& o) {
  return {{"task_share", o.task_share}, {"answer_weight", o.answer_weight}, {"answer_share", o.answer_share},
          {"phrasings", o.phrasings},
          {"eval_data_path", o.eval_data_path}};
}

// On resume: the saved recipe, with this invocation's run length and display options.
TrainOptions resumed_options(const TrainOptions& given) {
  fs::path path = fs::path(given.out_dir) / "train_options.json";
  if (!fs::exists(path)) return given;  // a run from before the recipe was saved: trust the command line
  nlohmann::json j = parse_json_strict(read_regular_file(path.string(), "train options"), "train: " + path.string());
  TrainOptions o = given;
  try {
    o.config_path = j.at("config_path").get<std::string>();
    o.init_from = j.value("init_from", std::string());
    o.tasks = j.at("tasks").get<std::vector<std::string>>();
    o.data_path = j.at("data_path").get<std::string>();
    o.filler_path = j.at("filler_path").get<std::string>();
    o.answer_only_loss = j.at("answer_only_loss").get<bool>();
    o.batch = j.at("batch").get<int64_t>();
    o.seq_len = j.at("seq_len").get<int64_t>();
    o.grad_accum = j.at("grad_accum").get<int64_t>();
    o.schedule.lr = j.at("lr").get<double>();
    o.schedule.min_lr_ratio = j.at("min_lr_ratio").get<double>();
    o.schedule.warmup_steps = j.at("warmup_steps").get<int64_t>();
    o.weight_decay = j.at("weight_decay").get<double>();
    o.clip = j.at("clip").get<double>();
    o.eval_every = j.at("eval_every").get<int64_t>();
    o.eval_batches = j.at("eval_batches").get<int64_t>();
    o.save_every = j.at("save_every").get<int64_t>();
    o.seed = j.at("seed").get<uint64_t>();
    o.tokenizer_path = j.value("tokenizer_path", std::string());
    // Runs saved before the mixture existed trained on legacy phrasings with unweighted answers.
    o.task_share = j.value("task_share", -1.0);
    o.answer_weight = j.value("answer_weight", 1.0);
    o.answer_share = j.value("answer_share", 0.0);
    o.phrasings = j.value("phrasings", std::string("legacy"));
    o.eval_data_path = j.value("eval_data_path", std::string());
  } catch (const nlohmann::json::exception& e) {
    fail("train: {} is not a valid run recipe: {}", path.string(), e.what());
  }
  try {
    validate_train_options(o);
  } catch (const InvalidArgument& e) {
    fail("train: {} holds an invalid recipe: {}", path.string(), e.what());
  }
  return o;
}

// The step a training checkpoint was saved at, from its metadata.
int64_t checkpoint_step(const Checkpoint& ck, const std::string& dir) {
  auto it = ck.metadata.find("step");
  HSA_CHECK(it != ck.metadata.end(), "train --resume: checkpoint {} has no 'step' in its metadata (not written by "
            "`hsa train`?)", dir);
  const std::string& text = it->second;
  int64_t step = 0;
  bool ok = !text.empty() && text.size() <= 18;
  for (char c : text) {
    if (c < '0' || c > '9') ok = false;
    else step = step * 10 + (c - '0');
  }
  HSA_CHECK(ok, "train --resume: checkpoint {} has step \"{}\" in its metadata, expected a non-negative integer",
            dir, escape_for_message(text));
  return step;
}

// Refuses what would make this run destroy data before anything is written.
void check_run_directory(const TrainOptions& o) {
  const fs::path out(o.out_dir);
  if (o.resume) {
    if (!fs::is_directory(out))
      fail_argument("train --resume: '{}' is not a run directory ({})", o.out_dir,
                    fs::exists(out) ? "not a directory" : "no such directory");
    if (!fs::exists(fs::symlink_status(out / "latest")))
      fail_argument("train --resume: '{}' has no 'latest' checkpoint to resume from", o.out_dir);
    return;
  }
  if (!o.init_from.empty()) {
    // The source may be a run directory or a checkpoint; neither may overlap the new run's directory.
    const fs::path src = fs::weakly_canonical(o.init_from), dst = fs::weakly_canonical(out);
    auto inside = [](const fs::path& child, const fs::path& parent) {
      auto [pe, ce] = std::mismatch(parent.begin(), parent.end(), child.begin(), child.end());
      return pe == parent.end();
    };
    if (inside(src, dst) || inside(dst, src))
      fail_argument("train: --init '{}' and --out '{}' overlap; a new stage must write to its own run directory",
                    o.init_from, o.out_dir);
    // The checkpoint's config, or the one given with --config: it must take the checkpoint's parameters.
    const std::string dir = resolve_checkpoint_dir(o.init_from);
    const ModelConfig checkpoint_config = ModelConfig::from_file(dir + "/config.json");
    ModelConfig config = checkpoint_config;
    if (!o.config_path.empty()) {
      config = ModelConfig::from_file(o.config_path);
      check_init_config(config, checkpoint_config, dir);
    }
    if (!o.reinit.empty()) check_reinit_patterns(config, o.reinit);
  }
  if (o.force) return;
  const std::vector<std::string> found = existing_run_outputs(o.out_dir);
  if (!found.empty())
    fail_argument("train: '{}' already holds a run ({}); continue it with --resume, or start over with --force",
                  o.out_dir, fmt::join(found, ", "));
}

}  // namespace

TrainResult train(const TrainOptions& given) {
  if (given.out_dir.empty()) fail_argument("train: --out is required");
  validate_train_options(given);
  // First, before anything touches the device: the NCCL backend binds this process to its GPU.
  const dist::LaunchEnv env = dist::launch_env_from_process();
  const std::unique_ptr<dist::Communicator> comm = dist::make_communicator(
      given.dist, env, parse_device(given.device),
      std::chrono::milliseconds(static_cast<int64_t>(given.dist_timeout_s * 1000)));
  const bool root = comm->is_root();
  const int world = comm->world_size();
  fs::path out(given.out_dir);
  std::optional<RunLock> lock;
  TrainOptions o;
  DataSetup data;
  // Rank 0 alone checks, locks and writes the run directory; the others only read it (a resume). Every rank
  // then learns whether all of them got this far, so a refusal on one rank (an existing run, a held lock)
  // ends every rank with a message instead of leaving the others waiting in the first collective.
  std::exception_ptr setup_error;
  try {
    if (root) {
      check_run_directory(given);
      fs::create_directories(out);
      lock.emplace(given.out_dir);  // before anything is read or written: a second trainer fails here
      check_run_directory(given);   // again, now that no other trainer can change the directory
    }
    if (given.resume) check_world_size(given, world);
    o = given.resume ? resumed_options(given) : given;
    data = setup_data(o);
    if (root) {
      fs::create_directories(out / "checkpoints");
      if (!o.resume) {
        nlohmann::json recipe = options_to_json(o);
        recipe.update(mixture_options_json(o));
        recipe["world_size"] = world;
        write_file_atomic((out / "train_options.json").string(), recipe.dump(2) + "\n");
      }
    }
  } catch (...) {
    setup_error = std::current_exception();
  }
  if (world > 1) {
    const double failed = dist::all_reduce_mean(*comm, setup_error ? 1.0 : 0.0) * world;
    if (!setup_error && failed > 0)
      fail("train: {:.0f} of {} processes could not set up the run in {} (their output says why)", failed, world,
           given.out_dir);
  }
  if (setup_error) std::rethrow_exception(setup_error);
  const bool quiet = o.quiet || !root;

  const Placement place = resolve_placement(o.device, o.dtype);  // fails early when the device cannot be used
  const Device device = place.device;
  ModelConfig config;
  TensorMap master;  // f32 parameters on the device: what AdamW updates and checkpoints hold
  const ops::AdamWConfig adam_config{o.schedule.lr, 0.9, 0.95, 1e-8, o.weight_decay};
  AdamW adam(adam_config);
  int64_t start_step = 0;
  TrainResult result;
  result.rank = comm->rank();
  std::string tokenizer_file;  // where the config's tokenizer file is now ("" for bytes)
  std::string published;  // the checkpoint of this run that `latest` names: the only one a save may prune
  if (o.resume) {
    std::string dir = latest_checkpoint_dir(o.out_dir);
    Checkpoint ck = load_checkpoint(dir);
    start_step = checkpoint_step(ck, dir);
    if (start_step > o.steps)
      fail_argument("train --resume: the run is at step {} already, past --steps {}; give --steps {} or more",
                    start_step, o.steps, start_step);
    published = fs::relative(dir, out).generic_string();
    config = ck.config;
    tokenizer_file = tokenizer_file_in(dir, config);
    master = master_from(ck.params, device);
    adam.load_state(convert(load_safetensors(dir + "/optimizer.safetensors").tensors, device, DType::f32),
                    start_step);
    if (root) result.losses = truncate_log(out / "train_log.jsonl", start_step);
    if (start_step == o.steps) {  // finished already: resuming it again is a no-op (scripts rerun stages)
      if (!quiet) fmt::print(stderr, "{} is at step {} already: nothing to train\n", o.out_dir, start_step);
      result.final_step = start_step;
      result.checkpoint = dir;
      return result;
    }
    if (!quiet) fmt::print(stderr, "resuming {} at step {}\n", dir, start_step);
  } else if (!o.init_from.empty()) {
    const std::string dir = resolve_checkpoint_dir(o.init_from);
    Checkpoint ck = load_checkpoint(dir);
    config = ck.config;
    if (!o.config_path.empty()) {  // replaces the checkpoint's (checked by check_run_directory); same tokenizer
      config = ModelConfig::from_file(o.config_path);
      check_init_config(config, ck.config, dir);
      config.tokenizer = ck.config.tokenizer;
    }
    tokenizer_file = tokenizer_file_in(dir, config);
    config.max_train_length = o.seq_len;
    master = master_from(ck.params, device);
    const std::vector<std::string> fresh = add_fresh_parameters(master, config, o.seed);
    if (root && !fresh.empty())  // even with --quiet: what the run did not take from the checkpoint
      fmt::print(stderr, "--config: {} parameter{} not in {} drawn fresh: {}\n", fresh.size(),
                 fresh.size() == 1 ? "" : "s", dir, fmt::join(fresh, ", "));
    const std::vector<std::string> redrawn = reinitialise_parameters(master, config, o.reinit, o.seed);
    if (!quiet && !redrawn.empty())
      fmt::print(stderr, "--reinit: {} parameter{} drawn afresh ({}{})\n", redrawn.size(), redrawn.size() == 1 ? "" : "s",
                 redrawn.front(), redrawn.size() > 1 ? ", ..." : "");
    if (root) truncate_log(out / "train_log.jsonl", 0);
  } else {
    config = ModelConfig::from_file(o.config_path);
    tokenizer_file = tokenizer_file_in(fs::path(o.config_path).parent_path().string(), config);
    config.max_train_length = o.seq_len;  // recorded for evaluation and the demo
    master = convert(init_parameters(config, o.seed, DType::f32), device, DType::f32);
    if (root) truncate_log(out / "train_log.jsonl", 0);
  }
  if (!o.tokenizer_path.empty() && !o.resume) {
    config.tokenizer = fs::path(o.tokenizer_path).filename().string();
    tokenizer_file = o.tokenizer_path;
  }
  if (!tokenizer_file.empty()) {
    const std::unique_ptr<Tokenizer> tok = load_tokenizer(tokenizer_file, "");
    HSA_CHECK(tok->vocab_size() <= config.vocab_size,
              "train: tokenizer {} has {} tokens but the model's vocab_size is {}", tokenizer_file, tok->vocab_size(),
              config.vocab_size);
  }
  // ZeRO-1: the master moves into the sharded optimizer's flat buffer (before the model shares its tensors), which
  // keeps this rank's slice of the state loaded above and nothing else.
  std::unique_ptr<dist::ShardedAdamW> sharded;
  if (o.zero1) {
    sharded = std::make_unique<dist::ShardedAdamW>(*comm, adam_config, master);
    sharded->load_state(adam.state(), adam.steps());
    adam = AdamW(adam_config);
  }
  // In f32 the model computes with the master tensors themselves; in bf16 with a copy refreshed every step.
  auto model = std::make_unique<Model>(config, convert(master, device, place.dtype));
  if (!quiet) fmt::print(stderr, "training on {}, computing in {}\n", place.description, dtype_name(place.dtype));
  if (!quiet && comm->backend() != "local")
    fmt::print(stderr, "data parallel: {} process{} ({}), global batch {} x {} = {} rows\n", world,
               world == 1 ? "" : "es", comm->backend(), o.batch, world, o.batch * world);
  if (!quiet && sharded)
    fmt::print(stderr, "ZeRO-1: each process keeps the optimizer state of {} of the parameters' elements\n",
               sharded->shard_size());

  // A shard built with another tokenizer would index past the embedding: check a prefix of each shard.
  for (const TokenShard* shard : {data.shard.get(), data.eval_shard.get()}) {
    if (!shard) continue;
    std::vector<int32_t> head(static_cast<size_t>(std::min<int64_t>(shard->size(), 1 << 20)));
    shard->read(0, static_cast<int64_t>(head.size()), head.data());
    const int32_t top = head.empty() ? 0 : *std::max_element(head.begin(), head.end());
    HSA_CHECK(top < config.vocab_size,
              "train: shard {} has token id {}, outside the model's vocabulary of {} (tokenizer '{}'): was it built "
              "with another tokenizer?",
              shard->path(), top, config.vocab_size, config.tokenizer);
  }
  // Task rows are tokenised like the model's text: with the tokenizer file found above ("" = bytes), which
  // --tokenizer may have put anywhere (not necessarily beside the config).
  auto task_tokenizer = [&] { return load_tokenizer(tokenizer_file.empty() ? "bytes" : tokenizer_file, ""); };
  data.tasks.tokenizer = task_tokenizer();
  data.eval_tasks = data.tasks;
  data.eval_tasks.tokenizer = task_tokenizer();
  auto source = data.make_train(o, RankRows{comm->rank(), world});
  source->seek(static_cast<uint64_t>(start_step * o.grad_accum));
  std::ofstream log;  // rank 0's: the others write nothing
  if (root) log.open(out / "train_log.jsonl", std::ios::app);
  ScheduleConfig schedule = o.schedule;
  schedule.total_steps = o.steps;
  int64_t tokens_per_step = o.batch * o.seq_len * o.grad_accum * world;  // over all processes
  Progress progress("train", o.steps - start_step, "step");
  auto t0 = std::chrono::steady_clock::now();
  int64_t last_step = start_step;
  int64_t nonfinite = 0;
  for (int64_t step = start_step + 1; step <= o.steps; ++step) {
    TensorMap grads;
    StepLoss total;
    for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
      StepLoss s = run_batch(*model, source->next(), &grads, 1.0 / double(o.grad_accum));
      total.loss += s.loss / double(o.grad_accum);
      total.aux += s.aux / double(o.grad_accum);
    }
    // Every rank takes part, whatever its loss: the mean loss (non-finite when any rank's is) then decides for
    // all ranks alike whether the step is skipped.
    if (!sharded) dist::average_gradients(*comm, grads);  // the sharded optimizer reduce-scatters them itself
    total.loss = dist::all_reduce_mean(*comm, total.loss);
    total.aux = dist::all_reduce_mean(*comm, total.aux);
    double lr = learning_rate(schedule, step);
    // A non-finite loss or gradient norm would poison the weights: skip the update, count it, stop past the limit.
    double grad_norm = NAN;
    if (std::isfinite(total.loss) && sharded) {
      grad_norm = sharded->step(grads, lr, o.clip);
      if (std::isfinite(grad_norm)) refresh_compute_copy(*model, master);
    } else if (std::isfinite(total.loss)) {
      grad_norm = apply_update(*model, master, adam, grads, lr, o.clip);
    }
    std::string skipped;
    if (!std::isfinite(total.loss) || !std::isfinite(grad_norm)) {
      ++nonfinite;
      const std::string what = skipped = !std::isfinite(total.loss) ? fmt::format("loss {}", total.loss)
                                                                    : fmt::format("gradient norm {}", grad_norm);
      if (root) {
        log << nlohmann::json{{"step", step}, {"skipped", what}}.dump() << "\n";
        log.flush();
      }
      HSA_CHECK(nonfinite <= o.max_nonfinite_skips,
                "train: non-finite {} at step {} ({} such step{}, --max-nonfinite-skips {}); stopping without saving "
                "it{}; lower --lr or check the config's initializer_range",
                what, step, nonfinite, nonfinite == 1 ? "" : "s", o.max_nonfinite_skips,
                published.empty() ? "" : fmt::format(" (the last good checkpoint is {}/{})", o.out_dir, published));
      if (!quiet) fmt::print(stderr, "\nstep {}: non-finite {}, update skipped ({} of {} allowed)\n", step, what,
                               nonfinite, o.max_nonfinite_skips);
    }
    result.losses.push_back(total.loss);
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double tok_s = double(tokens_per_step) * double(step - start_step) / std::max(elapsed, 1e-9);
    nlohmann::json line{{"step", step},   {"loss", total.loss}, {"aux_loss", total.aux},
                        {"lr", lr},       {"grad_norm", grad_norm}, {"tokens_per_s", tok_s}};
    if (root && o.eval_every > 0 && (step % o.eval_every == 0 || step == o.steps)) evaluate(*model, data, o, line);
    if (root && skipped.empty()) log << line.dump() << "\n";
    if (root) log.flush();
    if (!quiet)
      progress.update(step - start_step, fmt::format("loss {:.4f} lr {:.2e} {:.0f} tok/s{}", total.loss, lr, tok_s,
                                                     line.contains("eval_loss")
                                                         ? fmt::format(" eval {:.4f}", line["eval_loss"].get<double>())
                                                         : ""));
    last_step = step;
    bool stopping = o.stop_after > 0 && step >= o.stop_after;
    if ((o.save_every > 0 && step % o.save_every == 0) || step == o.steps || stopping) {
      const TensorMap optimizer_state = sharded ? sharded->state() : adam.state();  // sharded: a collective
      if (root)
        result.checkpoint = save_train_checkpoint(out, config, master, optimizer_state, step, source->position(),
                                                  tokenizer_file, published);
      else
        result.checkpoint = (out / fmt::format("checkpoints/step-{:06d}", step)).string();
    }
    if (stopping) break;
  }
  comm->barrier();  // every process returns once rank 0 has published the last checkpoint
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.final_step = last_step;
  result.tokens_per_second = double(tokens_per_step) * double(last_step - start_step) / std::max(elapsed, 1e-9);
  if (!quiet) progress.finish(fmt::format("{:.0f} tok/s, checkpoint {}", result.tokens_per_second, result.checkpoint));
  return result;
}

}  // namespace hsa

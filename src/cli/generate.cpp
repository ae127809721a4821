// hsa generate: prefill a prompt (in bounded segments) and decode with the chunk memory.
#include "cli/command.h"
#include "cli/placement_options.h"
#include "cli/tier_options.h"
#include "cli/validators.h"
#include "model/memory_plan.h"
#include "model/placement.h"
#include "infer/sampler.h"
#include "infer/session.h"
#include "infer/state_file.h"
#include "model/checkpoint.h"
#include "util/progress.h"
#include "text/tokenizer.h"
#include "train/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <fstream>

namespace {

struct GenerateOptions {
  std::string model, prompt, prompt_file;
  int64_t max_new_tokens = 64;
  int64_t segment = 4096;
  double temperature = 0, top_p = 1;
  uint64_t seed = 1;
  bool stop_at_newline = false;
  bool quiet = false;
  std::string device = "cpu", dtype;
  std::string save_state, load_state;  // state files (infer/state_file.h)
  hsa::TierRequest tiers;              // --memory-budget, --host-budget, --disk-dir
};

// docs/architecture.md §8: say what the run will hold, per tier of the chunk memory, before it starts, and refuse
// a context that cannot fit. The tiers come from the memory plan's free memory and weights; the refusal is the
// plan's (model/memory_plan.h), extended by the tiers. `positions` counts every position the run will hold: those
// of a loaded state too, not just the new prompt's. Returns the tiers the session uses.
hsa::MemoryTiers check_memory_plan(const hsa::Checkpoint& ck, const hsa::Placement& place, const GenerateOptions& o,
                                   int64_t positions, int64_t loaded) {
  const hsa::ModelConfig& c = ck.config;
  const hsa::MemoryPlan untiered = hsa::plan_memory(ck, place);
  const hsa::MemoryTiers tiers = hsa::choose_memory_tiers(c, place, o.tiers, size_t(untiered.weight_bytes), o.segment,
                                                          positions, size_t(untiered.free_bytes));
  const hsa::MemoryPlan plan = hsa::plan_memory(ck, place, size_t(untiered.free_bytes), tiers);
  const int64_t chunks = c.has_memory() ? positions / c.chunk_size : 0;
  const hsa::TierPlan layout = hsa::plan_tiers(tiers, c, place.dtype, chunks);
  const std::string where = place.device == hsa::Device::cpu ? "RAM" : "GPU";
  if (!o.quiet) {
    fmt::print(stderr,
               "memory plan ({}, {}): weights {:.1f} MiB, chunk memory up to {:.1f} MiB here for {} positions{}, "
               "{:.0f} MiB free\n",
               place.description, hsa::dtype_name(place.dtype), plan.weight_bytes / 1048576.0,
               (plan.bytes_for(positions) - plan.weight_bytes) / 1048576.0, positions,
               loaded > 0 ? fmt::format(" ({} of them in the loaded state)", loaded) : "", plan.free_bytes / 1048576.0);
    if (tiers.enabled())
      for (const std::string& line : hsa::describe_plan(layout, where)) fmt::print(stderr, "{}\n", line);
  }
  HSA_CHECK(layout.fits,
            "generate: {} chunks of the chunk memory fit in no tier ({} positions); raise --memory-budget{} or give "
            "--disk-dir",
            chunks - layout.device_pages - layout.host_pages, positions,
            place.device == hsa::Device::cuda ? " / --host-budget" : "");
  HSA_CHECK(positions <= plan.max_positions(),
            "generate: a context of {} positions needs about {:.0f} MiB (weights + chunk memory) but only {:.0f} MiB "
            "of memory is free; shorten the prompt or --max-new-tokens, or give --memory-budget",
            positions, plan.bytes_for(positions) / 1048576.0, plan.free_bytes / 1048576.0);
  return tiers;
}

// One line on where the chunk memory ended up, and how the spilled pages were read.
void print_tier_usage(const hsa::TierUsage& u, const std::string& where) {
  std::string host = u.host_pages > 0 ? fmt::format(", host {} chunks ({})", u.host_pages,
                                                    hsa::human_bytes(double(u.host_bytes)))
                                      : "";
  fmt::print(stderr,
             "chunk memory tiers: {} {} chunks ({}){}, disk {} chunks ({}), landmarks {} | pages fetched {}: {} from "
             "the cache, {} from host, {} from disk\n",
             where, u.device_pages, hsa::human_bytes(double(u.device_bytes)), host, u.disk_pages,
             hsa::human_bytes(double(u.disk_bytes)), hsa::human_bytes(double(u.landmark_bytes)), u.stats.fetched,
             u.stats.cache_hits, u.stats.host_reads, u.stats.disk_reads);
}

int run_generate(const GenerateOptions& o) {
  std::string prompt = o.prompt;
  if (!o.prompt_file.empty()) {
    std::ifstream in(o.prompt_file);
    HSA_CHECK(in.good(), "generate: cannot read prompt file {}", o.prompt_file);
    prompt.assign(std::istreambuf_iterator<char>(in), {});
  }
  HSA_CHECK(!prompt.empty(), "generate: empty prompt (give -p TEXT or -f FILE)");
  std::string dir = hsa::resolve_checkpoint_dir(o.model);
  hsa::Checkpoint ck = hsa::load_checkpoint(dir);
  hsa::Placement place = hsa::resolve_placement(o.device, o.dtype);
  const std::unique_ptr<hsa::Tokenizer> tok = hsa::load_tokenizer(ck.config.tokenizer, dir);
  std::vector<int32_t> ids = tok->encode(prompt, true);
  // A loaded state's positions come before the prompt's (less its <bos>, already in the state): the plan and the
  // tiers must hold them all, or a long state would be sized as if only the new prompt were there.
  const int64_t loaded = o.load_state.empty() ? 0 : hsa::state_file_positions(o.load_state);
  const int64_t fed = static_cast<int64_t>(ids.size()) - (o.load_state.empty() ? 0 : std::min<int64_t>(1, ids.size()));
  hsa::MemoryTiers tiers = check_memory_plan(ck, place, o, loaded + fed + o.max_new_tokens, loaded);
  hsa::Model model = hsa::place_model(ck, place);
  hsa::Session session(model);
  session.set_memory_tiers(tiers);
  auto t0 = std::chrono::steady_clock::now();
  hsa::Tensor logits;
  std::span<const int32_t> todo(ids);
  hsa::ModelFingerprint fingerprint;
  if (!o.save_state.empty() || !o.load_state.empty()) fingerprint = hsa::model_fingerprint(ck, tok->name());
  if (!o.load_state.empty()) {  // the prompt continues the saved one: feed only what follows it
    // The chunk memory stays in host memory (the file's bytes, read anyway) until the session moves it where the
    // model runs, into its tiers, a slice at a time: the device then holds at most what the plan counted.
    hsa::SavedState saved = hsa::load_state_file(o.load_state, fingerprint, model, hsa::Device::cpu);
    HSA_CHECK(static_cast<int64_t>(saved.tokens.size()) == loaded,
              "generate: '{}' changed while loading: {} positions planned for, {} loaded", o.load_state, loaded,
              saved.tokens.size());
    logits = session.restore(saved, static_cast<int64_t>(saved.tokens.size()));
    if (!o.quiet) fmt::print(stderr, "loaded state of {} tokens from {}\n", saved.tokens.size(), o.load_state);
    todo = todo.subspan(std::min(todo.size(), size_t(1)));  // its own <bos> is already in the state
  }
  hsa::Progress progress("prefill", static_cast<int64_t>(todo.size()), "tok", 1.0);
  if (!todo.empty())
    logits = session.prefill(todo, o.segment, [&](int64_t done, int64_t) {
      if (!o.quiet) progress.update(done);
    });
  if (!o.save_state.empty()) hsa::save_state_file(o.save_state, session.save(logits), fingerprint);
  double prefill_s = hsa::seconds_since(t0);
  hsa::Rng rng(o.seed);
  hsa::SamplingOptions sampling{o.temperature, o.top_p};
  std::vector<int32_t> generated;
  auto t1 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    int32_t next = hsa::sample_token(logits, sampling, rng);
    if (next == tok->eos_id()) break;
    generated.push_back(next);
    std::string piece = tok->decode(std::span<const int32_t>(&next, 1));
    fmt::print("{}", piece);
    std::fflush(stdout);
    if (o.stop_at_newline && piece.find('\n') != std::string::npos) break;
    logits = session.step(next);
  }
  double decode_s = hsa::seconds_since(t1);
  fmt::print("\n");
  std::fflush(stdout);
  fmt::print(stderr,
             "prompt: {} tokens in {:.2f}s ({:.0f} tok/s) | generated: {} tokens in {:.2f}s ({:.1f} tok/s) | "
             "state: {:.2f} MiB for {} positions ({} chunks in memory)\n",
             ids.size(), prefill_s, ids.size() / std::max(prefill_s, 1e-9), generated.size(), decode_s,
             generated.size() / std::max(decode_s, 1e-9), session.state_bytes() / 1048576.0, session.position(),
             session.position() / ck.config.chunk_size);
  if (tiers.enabled()) print_tier_usage(session.memory_usage(), place.device == hsa::Device::cpu ? "RAM" : "GPU");
  return 0;
}

hsa::cli::Command generate_command("generate", "generate text from a trained model", [](CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  app.add_option("-m,--model", o->model, "checkpoint directory or run directory")->required();
  auto* prompt = app.add_option("-p,--prompt", o->prompt, "prompt text");
  app.add_option("-f,--file", o->prompt_file, "read the prompt from a file")->check(CLI::ExistingFile)->excludes(prompt);
  app.add_option("-n,--max-new-tokens", o->max_new_tokens, "tokens to generate")
      ->check(hsa::cli::positive_number())
      ->capture_default_str();
  app.add_option("--segment", o->segment, "prefill segment size in tokens (bounds activation memory)")
      ->check(hsa::cli::positive_number())
      ->capture_default_str();
  app.add_option("-t,--temperature", o->temperature, "sampling temperature (0: greedy)")
      ->check(hsa::cli::non_negative_number())
      ->capture_default_str();
  app.add_option("--top-p", o->top_p, "nucleus sampling threshold")
      ->check(hsa::cli::probability_above_zero())
      ->capture_default_str();
  app.add_option("--seed", o->seed, "sampling seed")->check(hsa::cli::non_negative_number())->capture_default_str();
  app.add_flag("--stop-at-newline", o->stop_at_newline, "stop after the first generated newline");
  app.add_option("--save-state", o->save_state, "save the state after the prompt to this file");
  app.add_option("--load-state", o->load_state,
                 "start from a saved state; the prompt is the text that follows the saved one")
      ->check(CLI::ExistingFile);
  hsa::cli::add_placement_options(app, o->device, o->dtype);
  hsa::cli::add_tier_options(app, o->tiers);
  app.add_flag("-q,--quiet", o->quiet, "no progress output");
  return [o] { return run_generate(*o); };
});

}  // namespace

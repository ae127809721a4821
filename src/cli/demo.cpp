// hsa demo: the README's main job. Loads the shipped model (trained on passkey retrieval at a short context)
// and asks it for pass keys hidden in contexts up to 16x longer than it was trained on, on the CPU.
#include "cli/command.h"
#include "cli/validators.h"
#include "cli/placement_options.h"
#include "infer/greedy.h"
#include "model/placement.h"
#include "model/checkpoint.h"
#include "model/param_spec.h"
#include "text/filler.h"
#include "text/tasks.h"
#include "text/tokenizer.h"
#include "train/trainer.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>

namespace {

struct DemoOptions {
  std::string model = "models/passkey-tiny";
  std::vector<int64_t> lengths;
  int64_t samples = 3;
  uint64_t seed = 2026;
  std::string device = "cpu", dtype;
};

int run_demo(DemoOptions o) {
  HSA_CHECK(std::filesystem::exists(o.model),
            "demo: no model at '{}'. Train one with: hsa train -c configs/tiny.json -o {} --task passkey --answer-only",
            o.model, o.model);
  const std::string dir = hsa::resolve_checkpoint_dir(o.model);
  hsa::Checkpoint ck = hsa::load_checkpoint(dir);
  hsa::Placement place = hsa::resolve_placement(o.device, o.dtype);
  hsa::Model model = hsa::place_model(ck, place);
  const hsa::ModelConfig& c = ck.config;
  int64_t train_len = c.max_train_length > 0 ? c.max_train_length : 512;
  if (o.lengths.empty()) o.lengths = {train_len, 4 * train_len, 16 * train_len};
  fmt::print("model {}: {} parameters, {} layers ({} HSA), chunk {} tokens, top-{} chunks, trained at {} tokens\n",
             o.model, hsa::count_parameters(hsa::model_param_specs(c)), c.num_layers(), c.num_upper_groups,
             c.chunk_size, c.chunk_topk, train_len);
  fmt::print("task: find a 5-digit pass key hidden at a random depth of filler text, then answer greedily\n\n");
  fmt::print("{:>8} {:>7} {:>10} {:>10} {:>8} {:>12} {:>10}\n", "context", "sample", "expected", "answer", "ok",
             "prefill/s", "state");
  hsa::FillerText filler;
  const std::unique_ptr<hsa::Tokenizer> tok = hsa::load_tokenizer(c.tokenizer, dir);
  int64_t total_ok = 0, total = 0;
  for (int64_t length : o.lengths) {
    int64_t ok = 0;
    for (int64_t s = 0; s < o.samples; ++s) {
      hsa::TaskSample sample =
          hsa::make_task_sample(hsa::TaskKind::passkey, length, o.seed + 7919 * s + length, filler);
      std::span<const int32_t> prompt(sample.tokens.data(), sample.prompt_length);
      const hsa::GreedyAnswer answer =
          hsa::answer_greedily(model, prompt, static_cast<int64_t>(sample.answer.size()), 4096, tok->eos_id());
      std::string got = tok->decode(answer.tokens);
      bool correct = got == sample.answer;
      ok += correct;
      fmt::print("{:>8} {:>7} {:>10} {:>10} {:>8} {:>12.0f} {:>8.1f}MB\n", length, s, sample.answer, got,
                 correct ? "yes" : "no", double(sample.prompt_length) / answer.prefill_s, answer.state_bytes / 1e6);
      std::fflush(stdout);  // a row per sample as it finishes, also when piped (long contexts take minutes)
    }
    fmt::print("{:>8} tokens ({:.1f}x the training length): {}/{} correct\n\n", length, double(length) / train_len,
               ok, o.samples);
    total_ok += ok;
    total += o.samples;
  }
  fmt::print("{}/{} pass keys retrieved\n", total_ok, total);
  return 0;
}

hsa::cli::Command demo_command("demo", "retrieve pass keys far beyond the training length with the shipped model",
                               [](CLI::App& app) {
                                 auto o = std::make_shared<DemoOptions>();
                                 app.add_option("-m,--model", o->model, "checkpoint or run directory")
                                     ->capture_default_str();
                                 app.add_option("-c,--context", o->lengths,
                                                "context lengths to test (default: 1x, 4x, 16x the training length)")
                                     ->check(hsa::cli::positive_number());
                                 app.add_option("-n,--samples", o->samples, "samples per length")
                                     ->check(hsa::cli::positive_number())
                                     ->capture_default_str();
                                 app.add_option("--seed", o->seed, "seed for the haystacks")
                                     ->check(hsa::cli::non_negative_number())
                                     ->capture_default_str();
                                 hsa::cli::add_placement_options(app, o->device, o->dtype);
                                 return [o] { return run_demo(*o); };
                               });

}  // namespace

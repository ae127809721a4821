// hsa train: train a model from a config on synthetic tasks or a token shard.
#include "cli/command.h"
#include "cli/validators.h"
#include "text/tasks.h"
#include "train/trainer.h"

#include <fmt/format.h>

namespace {

std::vector<std::string> task_names() {
  std::vector<std::string> names;
  for (hsa::TaskKind kind : hsa::all_task_kinds()) names.push_back(hsa::task_kind_name(kind));
  return names;
}

hsa::cli::Command train_command("train", "train a model (a token shard, synthetic retrieval tasks, or a mixture)", [](CLI::App& app) {
  auto o = std::make_shared<hsa::TrainOptions>();
  app.add_option("-c,--config", o->config_path,
                 "model config JSON (e.g. configs/tiny.json); with --init it replaces the checkpoint's config: shared "
                 "parameters must keep their shapes, parameters only it has are drawn fresh (e.g. a copy of the "
                 "checkpoint's config.json with \"hsa_retrieval_norm\": true)")
      ->check(CLI::ExistingFile);
  app.add_option("-o,--out", o->out_dir, "run directory for checkpoints and the log")->required();
  app.add_option("--init", o->init_from,
                 "start from the weights of this checkpoint or run directory (fresh optimizer and schedule; "
                 "its config is used unless --config is given; its tokenizer always): the next stage of a curriculum")
      ->check(CLI::ExistingDirectory);
  app.add_option("--reinit", o->reinit,
                 "with --init: draw these parameters afresh (every parameter whose name contains the text; repeatable), "
                 "e.g. --reinit retrieval_proj to unsaturate a language model's retrieval before a retrieval stage");
  app.add_flag("--resume", o->resume,
               "continue the run in --out from its latest checkpoint, with its saved recipe (only --steps, "
               "--stop-after and --quiet are taken from this command)");
  app.add_flag("--force", o->force,
               "start a fresh run even though --out holds one (its log and options are replaced; its checkpoints "
               "are left in place)");
  app.add_option("--task", o->tasks,
                 "synthetic task(s): passkey, multikey_niah, variable_tracking, and with --phrasings train also "
                 "kv_lookup, multi_value, multi_query")
      ->check(CLI::IsMember(task_names()));
  app.add_option("--data", o->data_path, "token shard of natural text (from `hsa data build`)");
  app.add_option("--tokenizer", o->tokenizer_path,
                 "tokenizer.json the --data shard was built with: recorded in the config, copied into every checkpoint")
      ->check(CLI::ExistingFile);
  app.add_option("--filler", o->filler_path, "text corpus for task haystacks (default: built-in generator)")
      ->check(CLI::ExistingFile);
  CLI::Option* answer_only = app.add_flag("--answer-only", o->answer_only_loss, "tasks: learn only the answer tokens");
  app.add_option("--task-share", o->task_share,
                 "with --data and --task: the share of rows that are task samples, in (0, 1) (default 0.2); "
                 "the rest are language-model windows of the shard")
      ->check(hsa::cli::number_that("in (0, 1)", [](double v) { return v > 0 && v < 1; }));
  app.add_option("--answer-weight", o->answer_weight,
                 "task rows learn every token, the answer tokens weighted this much (ignored with --answer-only)")
      ->capture_default_str();
  app.add_option("--answer-share", o->answer_share,
                 "task rows learn every token, and the answer tokens' mean loss takes this share of the loss, "
                 "in [0, 1), however few they are (0: off, --answer-weight applies; not with --answer-only)")
      ->check(hsa::cli::number_that("in [0, 1)", [](double v) { return v >= 0 && v < 1; }))
      ->excludes(answer_only);
  app.add_option("--phrasings", o->phrasings,
                 "phrasing pool of the task rows: train (sentences, questions, key and value kinds disjoint from "
                 "the held-out eval pool and RULER) or legacy (the byte-level tasks' fixed phrasings)")
      ->check(CLI::IsMember({"train", "legacy"}))
      ->capture_default_str();
  app.add_option("--eval-data", o->eval_data_path, "token shard for eval_lm_loss (default: --data, other windows)")
      ->check(CLI::ExistingFile);
  app.add_option("-b,--batch", o->batch, "sequences per micro-batch")->capture_default_str();
  app.add_option("-L,--seq-len", o->seq_len, "training context length in tokens")->capture_default_str();
  app.add_option("-s,--steps", o->steps, "optimizer steps")->capture_default_str();
  app.add_option("--accum", o->grad_accum, "micro-batches per step (gradient accumulation)")->capture_default_str();
  app.add_option("--lr", o->schedule.lr, "peak learning rate")->capture_default_str();
  app.add_option("--warmup", o->schedule.warmup_steps, "linear warmup steps")->capture_default_str();
  app.add_option("--min-lr-ratio", o->schedule.min_lr_ratio, "final lr / peak lr (cosine)")->capture_default_str();
  app.add_option("--weight-decay", o->weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  app.add_option("--clip", o->clip, "global gradient-norm clip (0: off)")->capture_default_str();
  app.add_option("--eval-every", o->eval_every, "steps between evals (0: off)")->capture_default_str();
  app.add_option("--eval-batches", o->eval_batches, "batches per eval")->capture_default_str();
  app.add_option("--save-every", o->save_every, "steps between checkpoints")->capture_default_str();
  app.add_option("--seed", o->seed, "seed for init and data order")
      ->check(hsa::cli::non_negative_number())
      ->capture_default_str();
  app.add_option("--stop-after", o->stop_after, "stop after this step as if interrupted (testing resume)");
  app.add_option("--max-nonfinite-skips", o->max_nonfinite_skips,
                 "steps with a non-finite loss or gradient norm to skip (no update) before stopping with an error")
      ->capture_default_str();
  app.add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app.add_option("--dtype", o->dtype, "compute dtype, f32 or bf16 (default: f32 on cpu, bf16 on cuda; weights and "
                                      "optimizer state stay f32)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--dist", o->dist,
                 "data-parallel backend when a launcher starts several processes: auto (nccl on cuda, tcp on cpu, "
                 "nothing for one process), none, tcp or nccl (also for one process: the real NCCL path)")
      ->check(CLI::IsMember({"auto", "none", "tcp", "nccl"}))
      ->capture_default_str();
  app.add_option("--dist-timeout", o->dist_timeout_s,
                 "seconds rank 0 waits for every process to connect (and they for rank 0)")
      ->capture_default_str();
  app.add_flag("--zero1", o->zero1,
               "shard the optimizer state over the processes (ZeRO stage 1: reduce-scatter of the gradients, "
               "all-gather of the updated weights); the same checkpoints");
  app.add_flag("-q,--quiet", o->quiet, "no progress output");
  app.footer(
      "Several GPUs (data parallel): start one `hsa train` per GPU with any launcher; --batch is per process\n"
      "(the global batch is --batch x processes), rank 0 writes the log and the checkpoints:\n"
      "  torchrun --nproc-per-node 8 --no-python hsa train -c configs/base-100m.json -o runs/dp --device cuda ...\n"
      "  srun --ntasks-per-node 8 --gpus-per-task 1 hsa train ... --device cuda   (MASTER_ADDR defaults to the\n"
      "       node srun ran on; set it to the first node's address when that is a login node)\n"
      "  mpirun -np 8 -x MASTER_ADDR=$(hostname) -x MASTER_PORT=29500 hsa train ... --device cuda\n"
      "Resume with as many processes as the run started with.");
  return [o] {
    hsa::TrainResult r = hsa::train(*o);
    if (r.rank != 0) return 0;  // one summary per launch
    fmt::print("trained to step {}: final loss {:.4f}, {:.0f} tokens/s, checkpoint {}\n", r.final_step,
               r.losses.empty() ? 0.0 : r.losses.back(), r.tokens_per_second, r.checkpoint);
    return 0;
  };
});

}  // namespace

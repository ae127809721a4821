// hsa eval retrieval: where the HSA retrieval looks at the answer position of synthetic task samples
// (src/eval/retrieval_probe.h); a subcommand of `hsa eval`.
#pragma once
#include "cli/command.h"

namespace hsa::cli {

// Adds the `retrieval` subcommand to `eval`; the runner runs it when it was parsed.
Runner add_eval_retrieval(CLI::App& eval, CLI::App*& subcommand);

}  // namespace hsa::cli

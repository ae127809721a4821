// Subcommand registry for the `hsa` tool. Each src/cli/<name>.cpp registers one subcommand at static
// initialisation (these files are linked into the executable itself, so the registrations are kept):
//
//   static hsa::cli::Command reg("info", "print a config's size and memory per token", [](CLI::App& app) {
//     auto opts = std::make_shared<InfoOptions>();
//     app.add_option("-m,--model", opts->model, "model directory")->required();
//     return [opts] { return run_info(*opts); };  // exit code
//   });
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace hsa::cli {

using Runner = std::function<int()>;
using Setup = std::function<Runner(CLI::App&)>;

struct Command {
  Command(std::string name, std::string description, Setup setup);
};

struct CommandEntry {
  std::string name;
  std::string description;
  Setup setup;
};
std::vector<CommandEntry>& command_registry();

// The command line as typed (argv joined by spaces), for results that record the command that produced them.
const std::string& command_line();

}  // namespace hsa::cli

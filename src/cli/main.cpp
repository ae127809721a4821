// The `hsa` command: one tool, subcommands registered by the files beside this one.
#include "cli/command.h"

#include <hsa/error.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <new>
#include <string>

namespace hsa::cli {

std::vector<CommandEntry>& command_registry() {
  static std::vector<CommandEntry> registry;
  return registry;
}

Command::Command(std::string name, std::string description, Setup setup) {
  command_registry().push_back({std::move(name), std::move(description), std::move(setup)});
}

namespace {
std::string invocation;  // set once by main
}  // namespace

const std::string& command_line() { return invocation; }

}  // namespace hsa::cli

namespace {

// The one rule for exit codes (README, "Exit codes"): 2 when the command line is rejected (CLI11's parse and
// range errors, hsa::InvalidArgument for values checked later, an unknown command), 1 for runtime failures.
int usage_error(const std::string& message) {
  std::fprintf(stderr, "hsa: %s (see hsa --help)\n", message.c_str());
  return 2;
}

int runtime_error(const std::string& message) {
  std::fprintf(stderr, "hsa: error: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hsa::cli;
  for (int i = 0; i < argc; ++i) invocation += (i ? " " : "") + std::string(argv[i]);
  CLI::App app{"hsa: an engine for Hierarchical Sparse Attention language models (HSA-UltraLong)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hsa 0.1");
  auto entries = command_registry();
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::map<CLI::App*, Runner> runners;
  std::string names;
  for (const CommandEntry& entry : entries) {
    CLI::App* sub = app.add_subcommand(entry.name, entry.description);
    runners[sub] = entry.setup(*sub);
    names += (names.empty() ? "" : ", ") + entry.name;
  }
  // The top level takes no positional argument, so a first word that is not a command is a typo: say so
  // (CLI11 would only say that a subcommand is required).
  if (argc > 1 && argv[1][0] != '-' &&
      std::none_of(entries.begin(), entries.end(), [&](const CommandEntry& e) { return e.name == argv[1]; }))
    return usage_error("unknown command '" + std::string(argv[1]) + "'; commands: " + names);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }
  try {
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  } catch (const hsa::InvalidArgument& e) {
    return usage_error(e.what());
  } catch (const hsa::Error& e) {
    return runtime_error(e.what());
  } catch (const std::bad_alloc&) {
    return runtime_error("out of memory: an allocation failed; use a smaller model, batch, length or segment");
  } catch (const std::exception& e) {
    return runtime_error(std::string("unexpected error: ") + e.what());
  }
  return 0;
}

// The `hsa` command: one tool, subcommands registered by the files beside this one.
#include "cli/command.h"

#include <hsa/error.h>

#include <algorithm>
#include <cstdio>
#include <map>

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

int main(int argc, char** argv) {
  using namespace hsa::cli;
  for (int i = 0; i < argc; ++i) invocation += (i ? " " : "") + std::string(argv[i]);
  CLI::App app{"hsa: an engine for Hierarchical Sparse Attention language models (HSA-UltraLong)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hsa 0.1");
  auto entries = command_registry();
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::map<CLI::App*, Runner> runners;
  for (const CommandEntry& entry : entries) {
    CLI::App* sub = app.add_subcommand(entry.name, entry.description);
    runners[sub] = entry.setup(*sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "hsa: %s (see hsa --help)\n", e.what());
    return 2;
  }
  try {
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
  } catch (const hsa::Error& e) {
    std::fprintf(stderr, "hsa: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hsa: unexpected error: %s\n", e.what());
    return 1;
  }
  return 0;
}

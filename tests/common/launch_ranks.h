// Starts one command as `world` processes at once, the way torchrun does (RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR=127.0.0.1 and a free MASTER_PORT set for each), and waits for all of them: the data-parallel tests'
// launcher. Each process's output and exit code land in `dir`.
#pragma once
#include "common/free_port.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace hsa::testing {

struct RankRuns {
  std::vector<int> codes;            // exit codes, -1 when a process left none
  std::vector<std::string> outputs;  // stdout and stderr together
};

inline std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// `command` is a shell command line; `env` is put before it for every process (e.g. "OMP_NUM_THREADS=1").
inline RankRuns launch_ranks(const std::filesystem::path& dir, int world, const std::string& command,
                             const std::string& env = "") {
  const std::string port = std::to_string(free_port());
  std::string script;
  for (int r = 0; r < world; ++r) {
    const std::string rank = std::to_string(r);
    script += "(" + env + " RANK=" + rank + " WORLD_SIZE=" + std::to_string(world) + " LOCAL_RANK=" + rank +
              " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port + " " + command + " > '" + (dir / ("out" + rank)).string() +
              "' 2>&1; echo $? > '" + (dir / ("rc" + rank)).string() + "') &\n";
  }
  script += "wait\n";
  const std::filesystem::path script_path = dir / "launch.sh";
  std::ofstream(script_path) << script;
  RankRuns runs;
  if (std::system(("bash '" + script_path.string() + "'").c_str()) != 0) return runs;
  for (int r = 0; r < world; ++r) {
    const std::string rc = read_whole_file(dir / ("rc" + std::to_string(r)));
    runs.codes.push_back(rc.empty() ? -1 : std::atoi(rc.c_str()));
    runs.outputs.push_back(read_whole_file(dir / ("out" + std::to_string(r))));
  }
  return runs;
}

}  // namespace hsa::testing

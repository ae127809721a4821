// Benchmark driver: Google Benchmark plus the context every recorded result needs (commit, command, machine).
// Record results with:  build/hsa_bench --benchmark_out=bench/results/<name>.json --benchmark_out_format=json
#include <benchmark/benchmark.h>
#include <omp.h>

#include <array>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

namespace {

std::string run_command(const char* cmd) {
  std::array<char, 256> buf{};
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd, "r"), pclose);
  if (!pipe) return "unknown";
  while (fgets(buf.data(), buf.size(), pipe.get())) out += buf.data();
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out.empty() ? "unknown" : out;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  // HSA_COMMIT names the commit where the tree has no .git (copies sent to a GPU machine).
  const char* commit = std::getenv("HSA_COMMIT");
  benchmark::AddCustomContext("commit", commit ? commit : run_command("git rev-parse --short HEAD 2>/dev/null"));
  benchmark::AddCustomContext("command", command);
  benchmark::AddCustomContext("cpu_model", cpu_model());
  benchmark::AddCustomContext("omp_threads", std::to_string(omp_get_max_threads()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

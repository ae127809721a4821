#include "dist/launch_env.h"

#include <hsa/error.h>

#include <cstdlib>

namespace hsa::dist {
namespace {

// A whole decimal integer in [lo, hi]; anything else names the variable and its value.
int parse_int(const std::string& name, const std::string& text, long lo, long hi, const std::string& launcher) {
  bool ok = !text.empty() && text.size() <= 9;
  long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') ok = false;
    else value = value * 10 + (c - '0');
  }
  if (!ok || value < lo || value > hi)
    fail_argument("{} launch: {}='{}' must be an integer in [{}, {}]", launcher, name, text, lo, hi);
  return static_cast<int>(value);
}

struct Names {
  const char* launcher;
  const char* rank;
  const char* world_size;
  const char* local_rank;
};

constexpr Names kTorchrun{"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"};
constexpr Names kMpi{"mpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"};
constexpr Names kSlurm{"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"};

LaunchEnv parse_family(const EnvLookup& env, const Names& n) {
  const std::string launcher = n.launcher;
  LaunchEnv e;
  e.launcher = launcher;
  const auto rank = env(n.rank), world = env(n.world_size), local = env(n.local_rank);
  if (!world) fail_argument("{} launch: {} is set but {} is not", launcher, n.rank, n.world_size);
  if (!rank) fail_argument("{} launch: {} is set but {} is not", launcher, n.world_size, n.rank);
  e.world_size = parse_int(n.world_size, *world, 1, 1 << 20, launcher);
  e.rank = parse_int(n.rank, *rank, 0, e.world_size - 1, launcher);
  if (local) {
    e.local_rank = parse_int(n.local_rank, *local, 0, e.world_size - 1, launcher);
  } else if (e.world_size > 1) {
    fail_argument("{} launch: {}={} but {} is not set (it picks this process's GPU)", launcher, n.world_size,
                  e.world_size, n.local_rank);
  }
  if (e.world_size == 1) return e;

  std::optional<std::string> addr = env("MASTER_ADDR");
  const char* addr_name = "MASTER_ADDR";
  if (!addr && std::string(n.launcher) == kSlurm.launcher) {
    addr = env("SLURM_LAUNCH_NODE_IPADDR");
    addr_name = "SLURM_LAUNCH_NODE_IPADDR";
  }
  if (!addr || addr->empty())
    fail_argument("{} launch: world size {} needs rank 0's address in MASTER_ADDR{}", launcher, e.world_size,
                  std::string(n.launcher) == kMpi.launcher ? " (mpirun -x MASTER_ADDR=<host of rank 0>)" : "");
  if (addr->find_first_of(" \t\n/") != std::string::npos)
    fail_argument("{} launch: {}='{}' is not a host name or address", launcher, addr_name, *addr);
  e.master_addr = *addr;
  const auto port = env("MASTER_PORT");
  if (!port && std::string(n.launcher) == kTorchrun.launcher)
    fail_argument("{} launch: world size {} needs rank 0's port in MASTER_PORT", launcher, e.world_size);
  e.master_port = port ? parse_int("MASTER_PORT", *port, 1, 65535, launcher) : kDefaultMasterPort;
  return e;
}

}  // namespace

LaunchEnv parse_launch_env(const EnvLookup& env) {
  for (const Names* n : {&kTorchrun, &kMpi})
    if (env(n->rank) || env(n->world_size)) return parse_family(env, *n);
  // Slurm sets SLURM_PROCID and SLURM_NTASKS in the batch script too, where `hsa train` runs as one process:
  // only a job step (started by srun, which sets SLURM_STEP_ID) is a multi-process launch. Its own task count
  // is SLURM_STEP_NUM_TASKS (an allocation may hold more tasks than the step runs).
  if (env("SLURM_PROCID") && (env("SLURM_STEP_ID") || env("SLURM_STEPID"))) {
    Names slurm = kSlurm;
    if (env("SLURM_STEP_NUM_TASKS")) slurm.world_size = "SLURM_STEP_NUM_TASKS";
    return parse_family(env, slurm);
  }
  return LaunchEnv{};
}

LaunchEnv launch_env_from_process() {
  return parse_launch_env([](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  });
}

}  // namespace hsa::dist

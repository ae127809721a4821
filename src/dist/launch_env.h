// Where this process sits in a multi-process training job: its rank, the world size, its rank on its node (which
// GPU it drives) and where rank 0 listens for the rendezvous. Read from the variables the launchers set, so that
// torchrun, Slurm's srun and Open MPI's mpirun all start `hsa train` unchanged:
//   torchrun (or by hand)  RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
//   Open MPI               OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK; MASTER_ADDR
//   Slurm (srun)           SLURM_PROCID, SLURM_STEP_NUM_TASKS (else SLURM_NTASKS), SLURM_LOCALID; MASTER_ADDR,
//                          else SLURM_LAUNCH_NODE_IPADDR (the node srun ran on: rank 0 must run there)
// The first family present wins in that order (mpirun inside a Slurm allocation sees both Open MPI's and
// Slurm's variables; Open MPI's describe the job). MASTER_PORT defaults to kDefaultMasterPort outside torchrun.
#pragma once
#include <functional>
#include <optional>
#include <string>

namespace hsa::dist {

constexpr int kDefaultMasterPort = 29500;  // torchrun's default, so a cluster's firewall rules carry over

struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr;  // rank 0's host; empty when world_size is 1
  int master_port = 0;      // 0 when world_size is 1
  std::string launcher = "none";  // none, torchrun, mpi or slurm: which variables were read (for messages)

  bool distributed() const { return world_size > 1; }
};

// The value of an environment variable, nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Parses the launcher variables; no variables at all is a single process (world size 1). Throws
// hsa::InvalidArgument with one line naming the variable and its value when they are malformed or inconsistent
// (a rank outside [0, world size), a world size > 1 without a master address, RANK without WORLD_SIZE, ...).
LaunchEnv parse_launch_env(const EnvLookup& env);

// parse_launch_env over this process's environment.
LaunchEnv launch_env_from_process();

}  // namespace hsa::dist

// Launcher variables (torchrun, Open MPI, Slurm) to rank, world size, local rank and rank 0's address.
#include "dist/launch_env.h"

#include "common/error_text.h"

#include <gtest/gtest.h>

#include <map>

namespace hsa::dist {
namespace {

using hsa::testing::has;
using Vars = std::map<std::string, std::string>;

LaunchEnv parse(const Vars& vars) {
  return parse_launch_env([&](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}

std::string error_for(const Vars& vars) {
  try {
    parse(vars);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an hsa::InvalidArgument";
  return "";
}

TEST(LaunchEnv, NoVariablesIsOneProcess) {
  LaunchEnv e = parse({});
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.local_rank, 0);
  EXPECT_FALSE(e.distributed());
  EXPECT_EQ(e.launcher, "none");
  EXPECT_EQ(e.master_addr, "");
}

TEST(LaunchEnv, Torchrun) {
  LaunchEnv e = parse({{"RANK", "5"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node01"},
                       {"MASTER_PORT", "29400"}});
  EXPECT_EQ(e.launcher, "torchrun");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "node01");
  EXPECT_EQ(e.master_port, 29400);
  EXPECT_TRUE(e.distributed());
}

TEST(LaunchEnv, TorchrunSingleProcessNeedsNoMaster) {
  LaunchEnv e = parse({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.local_rank, 0);
  EXPECT_FALSE(e.distributed());
}

TEST(LaunchEnv, OpenMpiWithDefaultPort) {
  LaunchEnv e = parse({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "4"},
                       {"OMPI_COMM_WORLD_LOCAL_RANK", "3"}, {"MASTER_ADDR", "10.0.0.7"}});
  EXPECT_EQ(e.launcher, "mpi");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 3);
  EXPECT_EQ(e.master_addr, "10.0.0.7");
  EXPECT_EQ(e.master_port, kDefaultMasterPort);
}

TEST(LaunchEnv, OpenMpiInsideSlurmAllocationReadsOpenMpi) {
  LaunchEnv e = parse({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                       {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"MASTER_ADDR", "a"}, {"SLURM_PROCID", "0"},
                       {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "0"}, {"SLURM_STEP_ID", "0"}});
  EXPECT_EQ(e.launcher, "mpi");
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.world_size, 2);
}

TEST(LaunchEnv, SrunStepUsesLaunchNodeAddress) {
  LaunchEnv e = parse({{"SLURM_PROCID", "6"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "2"}, {"SLURM_STEP_ID", "0"},
                       {"SLURM_LAUNCH_NODE_IPADDR", "192.168.1.10"}});
  EXPECT_EQ(e.launcher, "slurm");
  EXPECT_EQ(e.rank, 6);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 2);
  EXPECT_EQ(e.master_addr, "192.168.1.10");
  EXPECT_EQ(e.master_port, kDefaultMasterPort);
}

TEST(LaunchEnv, SrunPrefersExplicitMasterAndStepTaskCount) {
  LaunchEnv e = parse({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "8"}, {"SLURM_STEP_NUM_TASKS", "2"},
                       {"SLURM_LOCALID", "0"}, {"SLURM_STEPID", "3"}, {"SLURM_LAUNCH_NODE_IPADDR", "login"},
                       {"MASTER_ADDR", "gpu-node-1"}, {"MASTER_PORT", "4000"}});
  EXPECT_EQ(e.world_size, 2);
  EXPECT_EQ(e.master_addr, "gpu-node-1");
  EXPECT_EQ(e.master_port, 4000);
}

TEST(LaunchEnv, SlurmBatchScriptWithoutStepIsOneProcess) {
  // `hsa train` run directly in an sbatch script of an 8-task allocation: not an srun step.
  LaunchEnv e = parse({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "0"}});
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.launcher, "none");
}

TEST(LaunchEnv, RankOutsideWorld) {
  std::string m = error_for({{"RANK", "4"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "h"},
                             {"MASTER_PORT", "1"}});
  EXPECT_TRUE(has(m, "torchrun launch: RANK='4' must be an integer in [0, 3]")) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST(LaunchEnv, MalformedNumbers) {
  EXPECT_TRUE(has(error_for({{"RANK", "0"}, {"WORLD_SIZE", "two"}}), "WORLD_SIZE='two'"));
  EXPECT_TRUE(has(error_for({{"RANK", "-1"}, {"WORLD_SIZE", "2"}}), "RANK='-1'"));
  EXPECT_TRUE(has(error_for({{"RANK", "0"}, {"WORLD_SIZE", "0"}}), "WORLD_SIZE='0' must be an integer in [1,"));
  EXPECT_TRUE(has(error_for({{"RANK", ""}, {"WORLD_SIZE", "2"}}), "RANK=''"));
  EXPECT_TRUE(has(error_for({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "h"},
                             {"MASTER_PORT", "70000"}}),
                  "MASTER_PORT='70000' must be an integer in [1, 65535]"));
}

TEST(LaunchEnv, HalfAFamilyIsAnError) {
  EXPECT_TRUE(has(error_for({{"RANK", "0"}}), "RANK is set but WORLD_SIZE is not"));
  EXPECT_TRUE(has(error_for({{"WORLD_SIZE", "2"}}), "WORLD_SIZE is set but RANK is not"));
  EXPECT_TRUE(has(error_for({{"OMPI_COMM_WORLD_SIZE", "2"}}), "OMPI_COMM_WORLD_SIZE is set but OMPI_COMM_WORLD_RANK"));
}

TEST(LaunchEnv, MissingLocalRankOrMaster) {
  EXPECT_TRUE(has(error_for({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}),
                  "WORLD_SIZE=2 but LOCAL_RANK is not set"));
  EXPECT_TRUE(has(error_for({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"MASTER_PORT", "1"}}),
                  "world size 2 needs rank 0's address in MASTER_ADDR"));
  EXPECT_TRUE(has(error_for({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "h"}}),
                  "needs rank 0's port in MASTER_PORT"));
  EXPECT_TRUE(has(error_for({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                             {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}}),
                  "mpirun -x MASTER_ADDR"));
  EXPECT_TRUE(has(error_for({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "2"}, {"MASTER_ADDR", "h"},
                             {"MASTER_PORT", "1"}}),
                  "LOCAL_RANK='2' must be an integer in [0, 1]"));
  EXPECT_TRUE(has(error_for({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "a b"},
                             {"MASTER_PORT", "1"}}),
                  "MASTER_ADDR='a b' is not a host name"));
}

}  // namespace
}  // namespace hsa::dist

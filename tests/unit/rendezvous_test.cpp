// The TCP rendezvous and the tcp communicator, with one thread per rank on loopback.
#include "dist/communicator.h"
#include "dist/rendezvous.h"

#include "common/error_text.h"
#include "common/free_port.h"

#include <gtest/gtest.h>

#include <functional>
#include <thread>
#include <vector>

namespace hsa::dist {
namespace {

using hsa::testing::free_port;
using hsa::testing::has;
using std::chrono::milliseconds;

LaunchEnv env_of(int rank, int world, int port) {
  LaunchEnv e;
  e.rank = rank;
  e.world_size = world;
  e.local_rank = rank;
  e.master_addr = "127.0.0.1";
  e.master_port = port;
  e.launcher = "torchrun";
  return e;
}

// Runs body(rank) on `world` threads; returns each rank's error message ("" when it succeeded).
std::vector<std::string> run_ranks(int world, const std::function<void(int)>& body) {
  std::vector<std::string> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        body(r);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

TEST(Rendezvous, EveryRankGetsRankZerosBlob) {
  const int world = 5, port = free_port();
  std::vector<std::string> got(world);
  auto errors = run_ranks(world, [&](int r) {
    if (r == 0) std::this_thread::sleep_for(milliseconds(300));  // the others start first and must retry
    Rendezvous rv(env_of(r, world, port), milliseconds(10000));
    std::string blob = r == 0 ? std::string("unique-id\0with nul", 18) : std::string("ignored");
    got[size_t(r)] = rv.broadcast(blob);
  });
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(errors[size_t(r)], "") << "rank " << r;
    EXPECT_EQ(got[size_t(r)], std::string("unique-id\0with nul", 18)) << "rank " << r;
  }
}

TEST(Rendezvous, WorldSizeOneConnectsNothing) {
  Rendezvous rv(env_of(0, 1, 1), milliseconds(10));
  EXPECT_EQ(rv.broadcast("x"), "x");
}

TEST(Rendezvous, RankZeroNamesMissingRanksAfterTimeout) {
  const int world = 4, port = free_port();
  auto errors = run_ranks(2, [&](int r) {  // only ranks 0 and 1 of 4 start
    Rendezvous rv(env_of(r, world, port), milliseconds(r == 0 ? 700 : 5000));
    rv.broadcast("x");
  });
  EXPECT_TRUE(has(errors[0], "rank 0 waited 0.7 s on port")) << errors[0];
  EXPECT_TRUE(has(errors[0], "2 of 4 ranks never connected (missing: 2, 3)")) << errors[0];
  // Rank 1 connected; rank 0 then failed and closed the connection.
  EXPECT_TRUE(has(errors[1], "rank 0 at 127.0.0.1")) << errors[1];
}

TEST(Rendezvous, RankWithoutRankZeroTimesOut) {
  const int port = free_port();
  std::string m = hsa::testing::error_of([&] { Rendezvous rv(env_of(2, 3, port), milliseconds(500)); });
  EXPECT_TRUE(has(m, "rank 2 could not reach rank 0 at 127.0.0.1:")) << m;
  EXPECT_TRUE(has(m, "within 0.5 s")) << m;
}

TEST(Rendezvous, MismatchedWorldSizeIsNamed) {
  const int port = free_port();
  auto errors = run_ranks(2, [&](int r) {
    Rendezvous rv(env_of(r, r == 0 ? 2 : 3, port), milliseconds(5000));
    rv.broadcast("x");
  });
  EXPECT_TRUE(has(errors[0], "rank 1 reports world size 3 but rank 0 has 2")) << errors[0];
  EXPECT_NE(errors[1], "");
}

TEST(Rendezvous, DuplicateRankIsNamed) {
  const int port = free_port();
  auto errors = run_ranks(3, [&](int r) {
    Rendezvous rv(env_of(r == 2 ? 1 : r, 3, port), milliseconds(5000));
    rv.broadcast("x");
  });
  EXPECT_TRUE(has(errors[0], "two processes connected as rank 1")) << errors[0];
}

TEST(TcpCommunicator, CollectivesMatchTheirDefinitions) {
  const int world = 3, port = free_port();
  std::vector<std::vector<double>> reduced(world), scattered(world), gathered(world);
  std::vector<double> means(world);
  auto errors = run_ranks(world, [&](int r) {
    auto comm = make_communicator("auto", env_of(r, world, port), Device::cpu, milliseconds(10000));
    ASSERT_EQ(comm->backend(), "tcp");
    ASSERT_EQ(comm->rank(), r);
    // Rank r holds r * 10 + i in element i.
    Tensor t = Tensor::from_values({r * 10.0 + 0, r * 10.0 + 1, r * 10.0 + 2, r * 10.0 + 3, r * 10.0 + 4,
                                    r * 10.0 + 5}, {2, 3});
    Tensor in = t.clone();
    comm->all_reduce_sum(t);
    reduced[size_t(r)] = t.to_vector();
    Tensor part = Tensor::zeros({2});
    comm->reduce_scatter_sum(in.view({-1}), part);
    scattered[size_t(r)] = part.to_vector();
    Tensor all = Tensor::zeros({world, 2});
    comm->all_gather(Tensor::from_values({double(r), -double(r)}, {2}), all);
    gathered[size_t(r)] = all.to_vector();
    means[size_t(r)] = all_reduce_mean(*comm, 2.0 * r);
    comm->barrier();
  });
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(errors[size_t(r)], "") << "rank " << r;
    // Sum over ranks 0..2 of r * 10 + i = 30 + 3i.
    EXPECT_EQ(reduced[size_t(r)], (std::vector<double>{30, 33, 36, 39, 42, 45})) << "rank " << r;
    EXPECT_EQ(scattered[size_t(r)], (std::vector<double>{30.0 + 6 * r, 33.0 + 6 * r})) << "rank " << r;
    EXPECT_EQ(gathered[size_t(r)], (std::vector<double>{0, -0.0, 1, -1, 2, -2})) << "rank " << r;
    EXPECT_DOUBLE_EQ(means[size_t(r)], 2.0) << "rank " << r;
  }
}

TEST(Communicator, LocalIsTheIdentity) {
  auto comm = make_communicator("auto", LaunchEnv{}, Device::cpu, milliseconds(1));
  EXPECT_EQ(comm->backend(), "local");
  EXPECT_EQ(comm->world_size(), 1);
  Tensor t = Tensor::from_values({1, 2, 3}, {3});
  comm->all_reduce_sum(t);
  EXPECT_EQ(t.to_vector(), (std::vector<double>{1, 2, 3}));
  Tensor out = Tensor::zeros({3});
  comm->reduce_scatter_sum(t, out);
  EXPECT_EQ(out.to_vector(), (std::vector<double>{1, 2, 3}));
  Tensor gathered = Tensor::zeros({1, 3});
  comm->all_gather(t, gathered);
  EXPECT_EQ(gathered.to_vector(), (std::vector<double>{1, 2, 3}));
  EXPECT_DOUBLE_EQ(all_reduce_mean(*comm, 4.5), 4.5);
}

TEST(Communicator, BackendChoiceErrors) {
  LaunchEnv two = env_of(0, 2, 1);
  EXPECT_TRUE(has(hsa::testing::error_of([&] { make_communicator("none", two, Device::cpu, milliseconds(1)); }),
                  "--dist none, but the torchrun launcher started 2 processes"));
  EXPECT_TRUE(has(hsa::testing::error_of([&] { make_communicator("mpi", two, Device::cpu, milliseconds(1)); }),
                  "--dist must be auto, none, tcp or nccl, got 'mpi'"));
  EXPECT_TRUE(has(hsa::testing::error_of([&] { make_communicator("nccl", LaunchEnv{}, Device::cpu, milliseconds(1)); }),
                  "--dist nccl needs --device cuda"));
  EXPECT_TRUE(has(hsa::testing::error_of([&] { make_communicator("tcp", LaunchEnv{}, Device::cuda, milliseconds(1)); }),
                  "--dist tcp moves cpu tensors"));
  Tensor wrong = Tensor::zeros({2}, DType::f64);
  auto local = make_local_communicator(Device::cpu);
  EXPECT_TRUE(has(hsa::testing::error_of([&] { local->all_reduce_sum(wrong); }),
                  "all_reduce_sum: t must be a contiguous f32 tensor on cpu"));
}

}  // namespace
}  // namespace hsa::dist

// The TCP rendezvous, the tcp communicator and the sharded optimizer, with one thread per rank on loopback.
#include "dist/communicator.h"
#include "dist/rendezvous.h"
#include "dist/sharded_adamw.h"
#include "ops/elementwise.h"
#include "train/optimizer.h"

#include "common/error_text.h"
#include "common/free_port.h"

#include <gtest/gtest.h>

#include <cmath>
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

// ZeRO-1 on 3 ranks (tcp): parameters of 7 + 5 + 4 elements padded to 18, so slices of 6 cut through
// parameters; a 1-D parameter (no weight decay), clipping on. Each rank has other gradients; the sharded update
// must equal AdamW on the mean gradients, and state() must equal AdamW's state, for three steps.
TEST(ShardedAdamW, EqualsAdamWOnTheMeanGradients) {
  const int world = 3, port = free_port();
  auto params = [] {
    TensorMap p;
    p["a.weight"] = Tensor::from_values({0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7}, {7, 1});
    p["b.norm"] = Tensor::from_values({1, 1.5, 0.5, -1, 2}, {5});
    p["c.weight"] = Tensor::from_values({0.9, -0.8, 0.7, -0.6}, {2, 2});
    return p;
  };
  auto grads_of = [&](int rank, int step) {
    TensorMap g;
    for (const auto& [name, t] : params()) {
      std::vector<double> v(static_cast<size_t>(t.numel()));
      for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(double(rank * 31 + step * 7 + int(i)) + double(name.size()));
      g[name] = Tensor::from_values(v, t.shape());
    }
    return g;
  };
  const ops::AdamWConfig config{1e-2, 0.9, 0.95, 1e-8, 0.1};
  const double clip = 1.0;  // the mean gradients' norm is above 1: clipping changes the update
  // The reference: one AdamW on the mean of the three ranks' gradients.
  TensorMap want = params();
  AdamW adam(config);
  std::vector<double> want_norms;
  for (int step = 0; step < 3; ++step) {
    TensorMap mean;
    for (int r = 0; r < world; ++r)
      for (const auto& [name, g] : grads_of(r, step)) {
        if (!mean.count(name)) mean[name] = Tensor::zeros(g.shape());
        ops::add_(mean[name], g, 1.0 / world);
      }
    want_norms.push_back(clip_grad_norm(mean, clip));
    adam.step(want, mean, config.lr);
  }
  for (double norm : want_norms) EXPECT_GT(norm, clip);
  std::vector<TensorMap> got(world), states(world);
  std::vector<std::vector<double>> norms(world);
  auto errors = run_ranks(world, [&](int r) {
    auto comm = make_communicator("tcp", env_of(r, world, port), Device::cpu, milliseconds(10000));
    TensorMap master = params();
    ShardedAdamW sharded(*comm, config, master);
    EXPECT_EQ(sharded.shard_size(), 6);
    for (int step = 0; step < 3; ++step) norms[size_t(r)].push_back(sharded.step(grads_of(r, step), config.lr, clip));
    got[size_t(r)] = master;
    states[size_t(r)] = sharded.state();
  });
  const TensorMap want_state = adam.state();
  for (int r = 0; r < world; ++r) {
    ASSERT_EQ(errors[size_t(r)], "") << "rank " << r;
    for (int step = 0; step < 3; ++step) EXPECT_NEAR(norms[size_t(r)][size_t(step)], want_norms[size_t(step)], 1e-5);
    for (const auto& [name, t] : want) {
      std::vector<double> w = t.to_vector(), g = got[size_t(r)].at(name).to_vector();
      for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(g[i], w[i], 1e-6) << "rank " << r << " " << name << " " << i;
    }
    ASSERT_EQ(states[size_t(r)].size(), want_state.size());
    for (const auto& [name, t] : want_state) {
      std::vector<double> w = t.to_vector(), g = states[size_t(r)].at(name).to_vector();
      for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(g[i], w[i], 1e-6) << "rank " << r << " " << name << " " << i;
    }
  }
}

}  // namespace
}  // namespace hsa::dist

// The memory plan `hsa generate` refuses beyond and `hsa serve` takes its prompt limit from.
#include "model/memory_plan.h"
#include "model/param_spec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace hsa {
namespace {

Checkpoint micro_checkpoint() {
  Checkpoint ck;
  ck.config = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json");
  ck.params = init_parameters(ck.config, 1, DType::f32);
  return ck;
}

TEST(MemoryPlan, CountsWeightsAndTwiceTheStatePerPosition) {
  Checkpoint ck = micro_checkpoint();
  double params = 0;
  for (const auto& [name, t] : ck.params) params += double(t.numel());
  MemoryPlan f32 = plan_memory(ck, Placement{Device::cpu, DType::f32, "cpu"}, size_t(1) << 30);
  EXPECT_DOUBLE_EQ(f32.weight_bytes, 4 * params);
  EXPECT_DOUBLE_EQ(f32.bytes_per_position, 2 * state_bytes_per_token(ck.config, DType::f32));
  EXPECT_GT(f32.bytes_per_position, 0);
  EXPECT_DOUBLE_EQ(f32.free_bytes, double(size_t(1) << 30));
  // The placement's dtype counts, not the checkpoint's.
  MemoryPlan bf16 = plan_memory(ck, Placement{Device::cpu, DType::bf16, "cpu"}, size_t(1) << 30);
  EXPECT_DOUBLE_EQ(bf16.weight_bytes, 2 * params);
  EXPECT_DOUBLE_EQ(bf16.bytes_per_position, f32.bytes_per_position / 2);
}

TEST(MemoryPlan, MaxPositionsIsTheLargestContextThatFits) {
  Checkpoint ck = micro_checkpoint();
  MemoryPlan probe = plan_memory(ck, Placement{Device::cpu, DType::f32, "cpu"}, 0);
  // Free memory such that exactly 1000 positions (and a half) fit in the usable part.
  double free = (probe.weight_bytes + 1000.5 * probe.bytes_per_position) / MemoryPlan::kUsable;
  MemoryPlan plan = plan_memory(ck, Placement{Device::cpu, DType::f32, "cpu"}, size_t(free));
  EXPECT_EQ(plan.max_positions(), 1000);
  EXPECT_LE(plan.bytes_for(1000), MemoryPlan::kUsable * plan.free_bytes);
  EXPECT_GT(plan.bytes_for(1001), MemoryPlan::kUsable * plan.free_bytes);
  // A server: the state cache is taken first, the rest is shared by the slots.
  double cache = 200 * plan.bytes_per_position;
  EXPECT_EQ(plan.max_positions(cache, 1), 800);
  EXPECT_EQ(plan.max_positions(cache, 4), 200);
  EXPECT_EQ(plan.max_positions(cache, 3), 266);
  // Nothing left after the weights and the cache.
  EXPECT_EQ(plan.max_positions(plan.free_bytes, 1), 0);
  EXPECT_THROW(plan.max_positions(0, 0), Error);
}

TEST(MemoryPlan, UnknownFreeMemoryRefusesNothing) {
  Checkpoint ck = micro_checkpoint();
  MemoryPlan plan = plan_memory(ck, Placement{Device::cpu, DType::f32, "cpu"}, 0);
  EXPECT_EQ(plan.max_positions(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(plan.max_positions(1e12, 8), std::numeric_limits<int64_t>::max());
}

TEST(MemoryPlan, MeasuresTheDeviceWhenNotTold) {
  Checkpoint ck = micro_checkpoint();
  MemoryPlan plan = plan_memory(ck, Placement{Device::cpu, DType::f32, "cpu"});
  EXPECT_GT(plan.free_bytes, 0);  // the host always knows its available memory
  EXPECT_GT(plan.max_positions(), 0);
}

// Tiered chunk memory (model/memory_tiers.h): the K/V pages count on the device only up to the device budget, the
// landmarks keep growing, and the page cache and staging buffers are held whatever the context.
TEST(MemoryPlan, TieredPagesStopAtTheDeviceBudget) {
  Checkpoint ck = micro_checkpoint();
  const ModelConfig& c = ck.config;
  const Placement cpu{Device::cpu, DType::f32, "cpu"};
  const double page = double(page_bytes(c, DType::f32)), chunk = double(c.chunk_size);
  MemoryTiers tiers;
  tiers.device_budget = size_t(10 * page + page / 2);  // ten whole pages
  tiers.disk_dir = "/tmp";
  MemoryPlan probe = plan_memory(ck, cpu, 0, tiers);
  EXPECT_DOUBLE_EQ(probe.bytes_per_position, 2.0 * double(landmark_bytes(c, DType::f32)) / chunk);
  EXPECT_DOUBLE_EQ(probe.page_bytes_per_position, page / chunk);
  EXPECT_DOUBLE_EQ(probe.page_cap_bytes, 10 * page);
  EXPECT_DOUBLE_EQ(probe.working_bytes, double(tiers.cache_pages + tiers.staging_pages) * page);
  // Before the budget fills the pages count; after it only the landmarks do.
  const int64_t five_chunks = 5 * c.chunk_size, far = 1000 * c.chunk_size;
  EXPECT_DOUBLE_EQ(probe.bytes_for(five_chunks), probe.weight_bytes + probe.working_bytes +
                                                     (probe.bytes_per_position + page / chunk) * double(five_chunks));
  EXPECT_DOUBLE_EQ(probe.bytes_for(far),
                   probe.weight_bytes + probe.working_bytes + 10 * page + probe.bytes_per_position * double(far));
  // Free memory for exactly 5000 positions (and a half) past the budget; and for 5 chunks before it.
  double free = (probe.weight_bytes + probe.working_bytes + 10 * page + 5000.5 * probe.bytes_per_position) /
                MemoryPlan::kUsable;
  MemoryPlan plan = plan_memory(ck, cpu, size_t(free), tiers);
  EXPECT_EQ(plan.max_positions(), 5000);
  EXPECT_LE(plan.bytes_for(5000), MemoryPlan::kUsable * plan.free_bytes);
  EXPECT_GT(plan.bytes_for(5001), MemoryPlan::kUsable * plan.free_bytes);
  double small = (probe.bytes_for(five_chunks) + 0.5 * (probe.bytes_per_position + page / chunk)) / MemoryPlan::kUsable;
  EXPECT_EQ(plan_memory(ck, cpu, size_t(small), tiers).max_positions(), five_chunks);
  // Tiers off is the plain plan.
  MemoryPlan off = plan_memory(ck, cpu, size_t(free), MemoryTiers{});
  EXPECT_EQ(off.max_positions(), plan_memory(ck, cpu, size_t(free)).max_positions());
  EXPECT_EQ(off.working_bytes, 0);
}

}  // namespace
}  // namespace hsa

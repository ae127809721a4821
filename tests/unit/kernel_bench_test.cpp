// The arithmetic of `hsa bench kernels` (src/bench/kernel_work, roofline, kernel_report): FLOP and byte counts on a
// small shape computed by hand, the peak table and the floor, targets, and the shape of the recorded JSON. The
// CUDA timing itself (src/bench/kernel_bench.cpp) runs only on a GPU machine.
#include "bench/kernel_report.h"
#include "bench/kernel_work.h"
#include "bench/roofline.h"
#include "common/error_text.h"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace hsa;
using namespace hsa::bench;
using hsa::testing::error_of;
using hsa::testing::has;

namespace {

// L = 256 tokens in C = 4 chunks of S = 64; HQ = 4 query heads over H = 2 KV heads (G = 2), D = 16, K = 2, dr = 8,
// window 3. Sizes in bytes (bf16 = 2): a query-shaped tensor [L, HQ, D] 256*4*16*2 = 32768; one of K, V [C, S, H, D]
// 4*64*2*16*2 = 16384 (the SWA k, v [L, H, D] likewise); slots L*H*K = 1024; HSA lse [L, HQ, K] f32 8192.
KernelShape small_shape() {
  KernelShape s;
  s.len = 256, s.q_heads = 4, s.kv_heads = 2, s.head_dim = 16, s.chunk_size = 64, s.topk = 2, s.retrieval_dim = 8;
  s.window = 3;
  return s;
}

KernelShape issue_shape(int64_t len) {
  KernelShape s;
  s.len = len;
  return s;
}

}  // namespace

TEST(KernelBench, CountsSelectionsAndPairsByHand) {
  const KernelShape s = small_shape();
  // Tokens 0..63 see no complete chunk, 64..127 one, 128..255 two or three (capped at K = 2): 64 * (0 + 1 + 2 + 2)
  // per KV head.
  EXPECT_EQ(filled_slots(s), 2 * 320);
  // Retrieval scores every complete chunk: 64 * (0 + 1 + 2 + 3) per KV head.
  EXPECT_EQ(retrieval_pairs(s), 2 * 384);
  // Window 3: 1 + 2 + 3 * 254.
  EXPECT_EQ(window_pairs(s), 765);
}

TEST(KernelBench, FlopAndByteFormulasOnAHandComputedShape) {
  const KernelShape s = small_shape();
  // HSA: 640 filled entries x G = 2 heads = 1280 rows of 4 S D = 4096 FLOPs (14 S D = 14336 with the backward).
  Work w = kernel_work(Kernel::hsa_fwd, s);
  EXPECT_DOUBLE_EQ(w.flops, 1280.0 * 4096);
  EXPECT_DOUBLE_EQ(w.bytes, 2 * 32768 + 2 * 16384 + 8 * 1024 + 8192);  // q, out; K, V; idx + w; lse
  w = kernel_work(Kernel::hsa_fwd_bwd, s);
  EXPECT_DOUBLE_EQ(w.flops, 1280.0 * 14336);
  // Decode: token 255 sees 3 complete chunks, keeps K = 2 per KV head: 2 x 2 heads x 64 rows of K (and of V) of 16
  // values, each row scored and summed by G = 2 query heads (4 FLOPs per value and head).
  const Work decode = kernel_work(Kernel::hsa_decode, s);
  EXPECT_DOUBLE_EQ(decode.flops, 4.0 * 2 * 2 * 64 * 16 * 2);
  EXPECT_DOUBLE_EQ(decode.bytes, 2 * 4096 * 2 + 2 * 64 * 2 + 8 * 4 + 4 * 8);  // K, V; q, out; idx + w; lse
  EXPECT_DOUBLE_EQ(w.bytes, 5 * 32768 + 6 * 16384 + 20 * 1024 + 2 * 8192);
  // Retrieval: 768 pairs x 2 dr; reads qr [L, H, dr] (8192 B) and landmarks [C, H, dr] (128 B), writes idx,
  // weights, scores (12 B per slot).
  w = kernel_work(Kernel::retrieval, s);
  EXPECT_DOUBLE_EQ(w.flops, 768.0 * 16);
  EXPECT_DOUBLE_EQ(w.bytes, 8192 + 128 + 12 * 1024);
  for (Kernel k : {Kernel::retrieval_scalar, Kernel::retrieval_mma, Kernel::retrieval_gated}) {
    const Work same = kernel_work(k, s);
    EXPECT_DOUBLE_EQ(same.flops, w.flops) << kernel_name(k);
    EXPECT_DOUBLE_EQ(same.bytes, w.bytes) << kernel_name(k);
  }
  // Retrieval decode: token 255 scores its 3 complete chunks in each of the 2 heads (2 dr each); reads its qr row
  // and the 4 landmarks of each head (5 rows of dr bf16 per head), writes 2 heads x K = 2 slots of 12 B.
  for (Kernel k : {Kernel::retrieval_decode, Kernel::retrieval_decode_scalar}) {
    w = kernel_work(k, s);
    EXPECT_DOUBLE_EQ(w.flops, 2.0 * 8 * 2 * 3);
    EXPECT_DOUBLE_EQ(w.bytes, 5 * 2 * 8 * 2 + 12 * 2 * 2);
  }
  // SWA: 765 pairs x HQ x 4 D; lse is L x HQ f32 = 4096 B.
  w = kernel_work(Kernel::swa_fwd, s);
  EXPECT_DOUBLE_EQ(w.flops, 765.0 * 4 * 64);
  EXPECT_DOUBLE_EQ(w.bytes, 2 * 32768 + 2 * 16384 + 4096);
  w = kernel_work(Kernel::swa_fwd_bwd, s);
  EXPECT_DOUBLE_EQ(w.flops, 3.5 * 765 * 4 * 64);
  EXPECT_DOUBLE_EQ(w.bytes, 6 * 32768 + 6 * 16384 + 2 * 4096);
}

TEST(KernelBench, IssueShapeMatchesThePreviousCounts) {
  // bench/hsa_cuda_bench.cpp (removed) reported 275 GFLOP for the HSA forward at 64K and 8.6 GFLOP for retrieval.
  EXPECT_NEAR(kernel_work(Kernel::hsa_fwd, issue_shape(65536)).flops / 1e9, 273.7, 0.1);
  EXPECT_NEAR(kernel_work(Kernel::retrieval, issue_shape(65536)).flops / 1e9, 8.58, 0.01);
}

TEST(KernelBench, DeviceBytesFollowThePlan) {
  const KernelShape s = small_shape();
  // q, out; K, V; idx + w; lse; scratch: bf16 partials [slots, G, D] = 65536, routing 28 B per slot and 4 per
  // (KV head, chunk).
  EXPECT_DOUBLE_EQ(device_bytes_needed(BufferPlan::of({Kernel::hsa_fwd}), s),
                   2 * 32768 + 2 * 16384 + 8 * 1024 + 8192 + (65536 + 28 * 1024 + 4 * 8));
  EXPECT_DOUBLE_EQ(device_bytes_needed(BufferPlan::of({Kernel::swa_fwd}), s), 2 * 32768 + 2 * 16384 + 4096);
  // HSA and SWA share q and out (and dout, dq): the union costs less than the parts.
  const double both = device_bytes_needed(BufferPlan::of({Kernel::hsa_fwd, Kernel::swa_fwd}), s);
  EXPECT_DOUBLE_EQ(both, device_bytes_needed(BufferPlan::of({Kernel::hsa_fwd}), s) + 2 * 16384 + 4096);
  // Every kernel at 1M tokens: ~56 GiB (32 GiB of it the HSA per-entry partials, 5 GiB the bound on the backward's
  // f32 dK/dV partials), which fits an 80 GB H100.
  const double all = device_bytes_needed(BufferPlan::of(all_kernels()), issue_shape(1 << 20)) / (1 << 30);
  EXPECT_GT(all, 55.0);
  EXPECT_LT(all, 58.0);
}

TEST(KernelBench, PeakTableKnowsTheH100AndH200Only) {
  auto h100 = device_peak("NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)");
  ASSERT_TRUE(h100);
  EXPECT_EQ(h100->name, "H100 SXM");
  EXPECT_DOUBLE_EQ(h100->flops_per_s, 989e12);
  EXPECT_DOUBLE_EQ(h100->bytes_per_s, 3.35e12);
  auto h200 = device_peak("NVIDIA H200");
  ASSERT_TRUE(h200);
  EXPECT_DOUBLE_EQ(h200->flops_per_s, 989e12);
  EXPECT_DOUBLE_EQ(h200->bytes_per_s, 4.8e12);
  for (const char* other : {"NVIDIA H100 PCIe", "NVIDIA H100 NVL", "NVIDIA H200 NVL", "NVIDIA GH200 480GB",
                            "NVIDIA A100-SXM4-80GB", ""})
    EXPECT_FALSE(device_peak(other)) << other;
}

TEST(KernelBench, FloorIsTheLargerOfComputeAndMemoryTime) {
  const DevicePeak peak{"test", 1e12, 1e9};  // 1 TFLOP/s, 1 GB/s
  Floor f = floor_of({2e9, 1e6}, peak);      // 2 ms of FLOPs, 1 ms of bytes
  EXPECT_DOUBLE_EQ(f.ms, 2.0);
  EXPECT_TRUE(f.compute_bound);
  f = floor_of({1e9, 3e6}, peak);
  EXPECT_DOUBLE_EQ(f.ms, 3.0);
  EXPECT_FALSE(f.compute_bound);
  // The HSA forward at 64K on an H100: 273.7 GFLOP / 989 TFLOP/s = 0.277 ms > 608 MB / 3.35 TB/s = 0.18 ms.
  f = floor_of(kernel_work(Kernel::hsa_fwd, issue_shape(65536)), *device_peak("NVIDIA H100 80GB HBM3"));
  EXPECT_NEAR(f.ms, 0.2767, 1e-3);
  EXPECT_TRUE(f.compute_bound);
}

TEST(KernelBench, TargetsOfTheIssue) {
  EXPECT_EQ(target_ms(Kernel::hsa_fwd, 65536), 1.7);
  EXPECT_EQ(target_ms(Kernel::hsa_fwd, 262144), 7.0);
  EXPECT_EQ(target_ms(Kernel::hsa_fwd_bwd, 65536), 12.0);
  EXPECT_EQ(target_ms(Kernel::hsa_fwd_bwd, 262144), 50.0);
  EXPECT_EQ(target_ms(Kernel::retrieval, 65536), 1.0);
  EXPECT_FALSE(target_ms(Kernel::retrieval, 262144));
  EXPECT_FALSE(target_ms(Kernel::hsa_fwd, 16384));
  EXPECT_FALSE(target_ms(Kernel::swa_fwd, 65536));
}

TEST(KernelBench, ParsesLengthsAndKernels) {
  EXPECT_EQ(parse_lengths("1M, 4096,16K,4096"), (std::vector<int64_t>{4096, 16384, 1048576}));
  EXPECT_TRUE(has(error_of([] { parse_lengths("4G"); }), "bad length '4G'"));
  EXPECT_TRUE(has(error_of([] { parse_lengths("100"); }), "not a positive multiple of the chunk size 64"));
  EXPECT_TRUE(has(error_of([] { parse_lengths("0"); }), "not a positive multiple"));
  EXPECT_TRUE(has(error_of([] { parse_lengths(""); }), "no length"));
  EXPECT_EQ(length_label(65536), "64K");
  EXPECT_EQ(length_label(1 << 20), "1M");
  EXPECT_EQ(length_label(4160), "4160");

  EXPECT_EQ(parse_kernels("swa_fwd,hsa_fwd,swa_fwd"), (std::vector<Kernel>{Kernel::swa_fwd, Kernel::hsa_fwd}));
  const std::string e = error_of([] { parse_kernels("hsa_fwd,flash"); });
  EXPECT_TRUE(has(e, "unknown kernel 'flash'")) << e;
  EXPECT_TRUE(has(e, "hsa_fwd, hsa_fwd_bwd, retrieval, swa_fwd, swa_fwd_bwd")) << e;
}

TEST(KernelBench, MedianMinAndTimePerToken) {
  const auto peak = device_peak("NVIDIA H100 80GB HBM3");
  Measurement even = measured(Kernel::hsa_fwd, issue_shape(4096), {3, 1, 2, 10}, peak);
  EXPECT_DOUBLE_EQ(even.median_ms, 2.5);
  EXPECT_DOUBLE_EQ(even.min_ms, 1.0);
  EXPECT_EQ(even.repeats, 4);
  Measurement odd = measured(Kernel::hsa_fwd, issue_shape(16384), {9, 8, 7}, peak);
  EXPECT_DOUBLE_EQ(odd.median_ms, 8.0);
  EXPECT_NEAR(odd.tflops(), odd.work.flops / 8e-3 / 1e12, 1e-9);

  std::vector<Measurement> run;
  set_per_token(even, run);
  EXPECT_EQ(even.per_token, 1.0);
  run.push_back(even);
  set_per_token(odd, run);  // (8 / 16384) / (2.5 / 4096)
  EXPECT_NEAR(*odd.per_token, 0.8, 1e-12);
  Measurement other = measured(Kernel::swa_fwd, issue_shape(16384), {1}, peak);
  set_per_token(other, run);  // its own kernel's first measurement
  EXPECT_EQ(other.per_token, 1.0);
}

TEST(KernelBench, TableRowsSayMissesAndSkips) {
  const auto peak = device_peak("NVIDIA H100 80GB HBM3");
  Measurement slow = measured(Kernel::hsa_fwd, issue_shape(65536), {13.9f}, peak);
  const std::string row = table_row(slow);
  EXPECT_TRUE(has(row, "hsa_fwd")) << row;
  EXPECT_TRUE(has(row, "64K")) << row;
  EXPECT_TRUE(has(row, "1.7 (miss)")) << row;
  EXPECT_TRUE(has(row, "compute")) << row;
  EXPECT_TRUE(has(table_row(measured(Kernel::hsa_fwd, issue_shape(65536), {1.5f}, peak)), "1.7 (met)"));
  const std::string skipped =
      table_row(not_measured(Kernel::retrieval, issue_shape(1 << 20), "skipped", "needs about 60 GiB", peak));
  EXPECT_TRUE(has(skipped, "1M skipped: needs about 60 GiB")) << skipped;
  EXPECT_TRUE(has(table_row(measured(Kernel::swa_fwd, issue_shape(4096), {1}, std::nullopt)), "?"));
}

TEST(KernelBench, JsonRecordsDeviceCommitCommandAndResults) {
  const auto peak = device_peak("NVIDIA H100 80GB HBM3");
  std::vector<Measurement> results{
      measured(Kernel::hsa_fwd, issue_shape(65536), {2, 2, 2}, peak),
      not_measured(Kernel::hsa_fwd, issue_shape(1 << 20), "skipped", "needs about 60 GiB", peak)};
  results[0].per_token = 1.0;
  const nlohmann::json j = run_json("NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)", "abc1234",
                                    "hsa bench kernels --out x.json", peak, KernelShape{}, results);
  EXPECT_EQ(j.at("device"), "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)");
  EXPECT_EQ(j.at("commit"), "abc1234");
  EXPECT_EQ(j.at("command"), "hsa bench kernels --out x.json");
  EXPECT_EQ(j.at("peak").at("tflops"), 989.0);
  EXPECT_EQ(j.at("shape").at("HQ"), 16);
  EXPECT_EQ(j.at("shape").at("swa_window"), 512);
  ASSERT_EQ(j.at("results").size(), 2u);

  const nlohmann::json& ok = j.at("results")[0];
  EXPECT_EQ(ok.at("kernel"), "hsa_fwd");
  EXPECT_EQ(ok.at("L"), 65536);
  EXPECT_EQ(ok.at("status"), "ok");
  EXPECT_EQ(ok.at("median_ms"), 2.0);
  EXPECT_EQ(ok.at("repeats"), 3);
  EXPECT_EQ(ok.at("target_ms"), 1.7);
  EXPECT_EQ(ok.at("meets_target"), false);
  EXPECT_EQ(ok.at("floor_bound"), "compute");
  EXPECT_NEAR(ok.at("floor_fraction").get<double>(), ok.at("floor_ms").get<double>() / 2.0, 1e-12);
  EXPECT_NEAR(ok.at("tflops").get<double>(), ok.at("flops").get<double>() / 2e-3 / 1e12, 1e-9);
  EXPECT_TRUE(ok.at("check_rel_err").is_null());

  const nlohmann::json& skipped = j.at("results")[1];
  EXPECT_EQ(skipped.at("status"), "skipped");
  EXPECT_EQ(skipped.at("reason"), "needs about 60 GiB");
  EXPECT_FALSE(skipped.contains("median_ms"));
  EXPECT_TRUE(skipped.at("floor_ms").is_number());  // the floor is known without a measurement

  // A GPU outside the peak table: no floor, recorded as null.
  const nlohmann::json unknown =
      run_json("NVIDIA A100", "x", "y", std::nullopt, KernelShape{}, {measured(Kernel::swa_fwd, issue_shape(4096), {1}, std::nullopt)});
  EXPECT_TRUE(unknown.at("peak").is_null());
  EXPECT_TRUE(unknown.at("results")[0].at("floor_ms").is_null());
  EXPECT_TRUE(unknown.at("results")[0].at("floor_fraction").is_null());
}

TEST(KernelBench, CommitComesFromTheEnvironmentFirst) {
  ::setenv("HSA_COMMIT", "feedbee", 1);
  EXPECT_EQ(current_commit(), "feedbee");
  ::unsetenv("HSA_COMMIT");
  EXPECT_FALSE(current_commit().empty());  // git's short hash here, or "unknown" outside a repository
}

#include "common/error_text.h"
#include "gpu/parity.h"
#include "ops/moe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

using namespace hsa;
using namespace hsa::testing;

namespace {

// Sizes that are no multiple of any tile: N = 37 tokens, dm = 48, F = 40, E = 5.
struct MoeCase {
  int64_t n = 37, dm = 48, experts = 5, ffn = 40, topk = 2, shared = 0, ffn_shared = 24;
  int64_t starved = -1;  // an expert the router never picks, or -1
};

std::string describe(const MoeCase& c, DType dtype) {
  return fmt::format("{} N={} dm={} E={} F={} k={} NS={} Fs={} starved={}", dtype_name(dtype), c.n, c.dm, c.experts,
                     c.ffn, c.topk, c.shared, c.ffn_shared, c.starved);
}

// The starved expert is kept out by a constant last feature of x (4) that its router row weighs by -20: its
// logit trails the others by ~80, far beyond the spread of the random part (std ~2).
Tensor make_x(const MoeCase& c, uint64_t seed, DType dtype) {
  Tensor x = random_input({c.n, c.dm}, seed, dtype);
  if (c.starved < 0) return x;
  std::vector<double> v = x.to_vector();
  for (int64_t t = 0; t < c.n; ++t) v[t * c.dm + c.dm - 1] = 4.0;
  return Tensor::from_values(v, {c.n, c.dm}, dtype);
}

ops::MoeWeights make_weights(const MoeCase& c, uint64_t seed, DType dtype) {
  ops::MoeWeights w;
  w.router = random_input({c.experts, c.dm}, seed, dtype, 0.3);
  if (c.starved >= 0) {
    std::vector<double> v = w.router.to_vector();
    for (int64_t e = 0; e < c.experts; ++e) v[e * c.dm + c.dm - 1] = e == c.starved ? -20.0 : 0.0;
    w.router = Tensor::from_values(v, {c.experts, c.dm}, dtype);
  }
  w.w_gate = random_input({c.experts, c.ffn, c.dm}, seed + 1, dtype, 0.2);
  w.w_up = random_input({c.experts, c.ffn, c.dm}, seed + 2, dtype, 0.2);
  w.w_down = random_input({c.experts, c.dm, c.ffn}, seed + 3, dtype, 0.2);
  if (c.shared > 0) {
    w.shared_gate = random_input({c.shared, c.ffn_shared, c.dm}, seed + 4, dtype, 0.2);
    w.shared_up = random_input({c.shared, c.ffn_shared, c.dm}, seed + 5, dtype, 0.2);
    w.shared_down = random_input({c.shared, c.dm, c.ffn_shared}, seed + 6, dtype, 0.2);
  }
  return w;
}

ops::MoeWeights to_gpu(const ops::MoeWeights& w) {
  ops::MoeWeights g{gpu(w.router), gpu(w.w_gate), gpu(w.w_up), gpu(w.w_down), {}, {}, {}};
  if (w.shared_gate.defined()) {
    g.shared_gate = gpu(w.shared_gate);
    g.shared_up = gpu(w.shared_up);
    g.shared_down = gpu(w.shared_down);
  }
  return g;
}

// Every gradient field of the GPU result against the CPU's; shared fields defined exactly when the weights are.
void expect_grads_parity(const ops::MoeGrads& g, const ops::MoeGrads& ref, double tol) {
  expect_parity(g.dx, ref.dx, tol, "dx");
  expect_parity(g.dw.router, ref.dw.router, tol, "d router");
  expect_parity(g.dw.w_gate, ref.dw.w_gate, tol, "d w_gate");
  expect_parity(g.dw.w_up, ref.dw.w_up, tol, "d w_up");
  expect_parity(g.dw.w_down, ref.dw.w_down, tol, "d w_down");
  ASSERT_EQ(g.dw.shared_gate.defined(), ref.dw.shared_gate.defined());
  ASSERT_EQ(g.dw.shared_up.defined(), ref.dw.shared_up.defined());
  ASSERT_EQ(g.dw.shared_down.defined(), ref.dw.shared_down.defined());
  if (ref.dw.shared_gate.defined()) {
    expect_parity(g.dw.shared_gate, ref.dw.shared_gate, tol, "d shared_gate");
    expect_parity(g.dw.shared_up, ref.dw.shared_up, tol, "d shared_up");
    expect_parity(g.dw.shared_down, ref.dw.shared_down, tol, "d shared_down");
  }
}

bool all_zero(const Tensor& t) {
  for (double v : t.to_vector())
    if (v != 0.0) return false;
  return true;
}

void check_moe(const MoeCase& c, DType dtype, uint64_t seed) {
  SCOPED_TRACE(describe(c, dtype));
  const double tol = tol_for(dtype);
  Tensor x = make_x(c, seed, dtype), dy = random_input({c.n, c.dm}, seed + 10, dtype);
  ops::MoeWeights w = make_weights(c, seed + 20, dtype), wg = to_gpu(w);
  ops::MoeParams p{c.topk, 0.05};
  const int64_t act = c.n * c.topk * c.ffn + c.shared * c.n * c.ffn_shared;

  poison_outputs({bytes_of({c.n, c.dm}, dtype), bytes_of({c.n, c.experts}, DType::f32),
                  bytes_of({c.n, c.topk}, DType::i32), bytes_of({c.n, c.topk}, DType::f32), bytes_of({act}, dtype),
                  bytes_of({act}, dtype), bytes_of({1}, DType::f64)});
  ops::MoeOut out = ops::moe_forward(gpu(x), wg, p), ref = ops::moe_forward(x, w, p);
  ASSERT_EQ(out.experts.device(), Device::cuda);
  ASSERT_EQ(out.experts.dtype(), DType::i32);
  // Same routing first: a different choice would make every later comparison meaningless.
  ASSERT_EQ(max_abs_diff(host(out.experts), ref.experts), 0.0) << "the GPU router chose other experts";
  if (c.starved >= 0)
    for (double e : ref.experts.to_vector()) ASSERT_NE(e, double(c.starved)) << "the test's router setup leaks";
  expect_parity(out.y, ref.y, tol, "y");
  // The router runs in f32 for bf16 storage too (on both devices), so probs and gates meet the f32 bound.
  expect_parity(out.probs, ref.probs, kF32Tol, "probs");
  expect_parity(out.gates, ref.gates, kF32Tol, "gates");
  ASSERT_EQ(out.aux_loss.device(), Device::cuda);
  ASSERT_EQ(out.aux_loss.dtype(), DType::f64);
  ASSERT_EQ(out.aux_loss.shape(), (Shape{1}));
  EXPECT_NEAR(out.aux_loss.item(), ref.aux_loss.item(), kF32Tol * std::abs(ref.aux_loss.item())) << "aux_loss";
  ASSERT_EQ(out.saved.size(), 2u);
  EXPECT_EQ(out.saved[0].dtype(), dtype);  // cuda keeps the pre-activations in the storage dtype
  EXPECT_EQ(out.saved[0].shape(), (Shape{act}));

  const size_t expert_bytes = bytes_of({c.experts, c.ffn, c.dm}, dtype),
               shared_bytes = bytes_of({c.shared, c.ffn_shared, c.dm}, dtype);
  poison_outputs({bytes_of({c.n, c.dm}, dtype), bytes_of({c.experts, c.dm}, dtype), expert_bytes, expert_bytes,
                  expert_bytes, shared_bytes, shared_bytes, shared_bytes});
  const double daux = 2.0;  // large enough that the load-balancing term shows in the router gradient
  ops::MoeGrads g = ops::moe_backward(gpu(dy), daux, gpu(x), wg, p, out),
                gr = ops::moe_backward(dy, daux, x, w, p, ref);
  expect_grads_parity(g, gr, tol);
  if (c.starved >= 0) {
    EXPECT_TRUE(all_zero(host(g.dw.w_gate).select(0, c.starved))) << "d w_gate of the unused expert";
    EXPECT_TRUE(all_zero(host(g.dw.w_up).select(0, c.starved))) << "d w_up of the unused expert";
    EXPECT_TRUE(all_zero(host(g.dw.w_down).select(0, c.starved))) << "d w_down of the unused expert";
  }
}

}  // namespace

TEST(MoeParity, F32RoutedOnly) {
  HSA_REQUIRE_GPU();
  check_moe(MoeCase{}, DType::f32, 1);
}

TEST(MoeParity, F32WithSharedExperts) {
  HSA_REQUIRE_GPU();
  MoeCase c;
  c.shared = 2;
  check_moe(c, DType::f32, 2);
}

TEST(MoeParity, Bf16RoutedOnlyAndWithSharedExperts) {
  HSA_REQUIRE_GPU();
  check_moe(MoeCase{}, DType::bf16, 3);
  MoeCase c;
  c.shared = 1;
  check_moe(c, DType::bf16, 4);
}

// A hidden size that is no multiple of the 16-byte pack (gather and combine take their width-1 path) and one that is
// (the packed path), both with a shared expert.
TEST(MoeParity, UnpackedAndPackedRowWidths) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16})
    for (int64_t dm : {int64_t(45), int64_t(64)}) {
      MoeCase c;
      c.dm = dm;
      c.shared = 1;
      check_moe(c, dtype, 20 + dm);
    }
}

TEST(MoeParity, TopOneAndTopAll) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16}) {
    MoeCase one;
    one.topk = 1;
    one.shared = 1;
    check_moe(one, dtype, 5);
    MoeCase all;
    all.topk = all.experts;
    check_moe(all, dtype, 6);
  }
}

TEST(MoeParity, UnusedExpertGetsZeroGradients) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16}) {
    MoeCase c;
    c.starved = 3;
    c.shared = 1;
    check_moe(c, dtype, 7);
    c.topk = c.experts - 1;  // every other expert sees every token
    check_moe(c, dtype, 8);
  }
}

TEST(MoeParity, ManyTokensOddWidths) {
  HSA_REQUIRE_GPU();
  MoeCase c;
  c.n = 300;
  c.dm = 33;
  c.experts = 8;
  c.ffn = 21;
  c.topk = 3;
  c.shared = 1;
  c.ffn_shared = 17;
  check_moe(c, DType::f32, 9);
  check_moe(c, DType::bf16, 10);
}

TEST(MoeParity, NoTokensGiveZeroGradients) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16}) {
    MoeCase c;
    c.n = 0;
    c.shared = 1;
    ops::MoeWeights w = to_gpu(make_weights(c, 11, dtype));
    Tensor x = gpu(Tensor::zeros({0, c.dm}, dtype));
    ops::MoeOut out = ops::moe_forward(x, w, {c.topk});
    EXPECT_EQ(out.y.shape(), (Shape{0, c.dm}));
    EXPECT_EQ(out.aux_loss.item(), 0.0);
    poison_outputs({bytes_of({c.experts, c.dm}, dtype), bytes_of({c.experts, c.ffn, c.dm}, dtype),
                    bytes_of({c.shared, c.ffn_shared, c.dm}, dtype)});
    ops::MoeGrads g = ops::moe_backward(x, 1.0, x, w, {c.topk}, out);
    EXPECT_TRUE(all_zero(host(g.dw.router))) << dtype_name(dtype);
    EXPECT_TRUE(all_zero(host(g.dw.w_gate))) << dtype_name(dtype);
    EXPECT_TRUE(all_zero(host(g.dw.w_down))) << dtype_name(dtype);
    EXPECT_TRUE(all_zero(host(g.dw.shared_up))) << dtype_name(dtype);
  }
}

TEST(MoeParity, BadExpertIdThrowsInBackward) {
  HSA_REQUIRE_GPU();
  MoeCase c;
  c.n = 5;
  c.experts = 4;
  ops::MoeWeights w = to_gpu(make_weights(c, 12, DType::f32));
  Tensor x = gpu(random_input({c.n, c.dm}, 13, DType::f32));
  ops::MoeOut out = ops::moe_forward(x, w, {2});
  out.experts = gpu(Tensor::from_i32({0, 1, 2, 3, 0, 1, 2, 9, 0, 1}, {5, 2}));
  // The op itself does not wait for the device: the bad id throws at the next synchronize().
  std::string msg = error_of([&] {
    ops::moe_backward(x, 1.0, x, w, {2}, out);
    cuda::synchronize();
  });
  EXPECT_TRUE(has(msg, "moe_backward: 'fwd.experts' holds an expert id outside [0, E): 9 at flat index 7, "
                       "outside [0, 4)"))
      << msg;
  // The device is usable afterwards (the error record was cleared).
  out = ops::moe_forward(x, w, {2});
  EXPECT_NO_THROW({
    ops::moe_backward(x, 1.0, x, w, {2}, out);
    cuda::synchronize();
  });
}

TEST(MoeParity, MixedDevicesAreRejected) {
  HSA_REQUIRE_GPU();
  MoeCase c;
  c.n = 4;
  ops::MoeWeights w = make_weights(c, 14, DType::f32);
  Tensor x = random_input({c.n, c.dm}, 15, DType::f32);
  ops::MoeOut cpu_out = ops::moe_forward(x, w, {2});
  std::string msg = error_of([&] { ops::moe_forward(gpu(x), w, {2}); });
  EXPECT_TRUE(has(msg, "moe_forward: 'router' is on cpu but 'x' is on cuda")) << msg;
  msg = error_of([&] { ops::moe_backward(gpu(x), 1.0, gpu(x), to_gpu(w), {2}, cpu_out); });
  EXPECT_TRUE(has(msg, "moe_backward: 'fwd.probs' is on cpu but 'x' is on cuda")) << msg;
}

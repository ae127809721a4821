// CUDA block attention (the chunk encoder's) against the CPU op, forward and backward.
//   q, k, v, out, dout, dq, dk, dv [N, T, H, D]; lse [N, T, H].
// The kernels write into buffers filled with NaN first, so an element they fail to write shows up. bf16 cases
// compare against the CPU op in f32 on the same bf16-rounded inputs. Tolerances are relative errors in norm:
// f32 1e-5, bf16 1e-2.
#include "cuda/block_attention.h"
#include "cuda/runtime.h"
#include "gpu/parity.h"
#include "ops/block_attention.h"

#include <hsa/random.h>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

using namespace hsa;
using namespace hsa::testing;

namespace {

struct Case {
  const char* name;
  int64_t blocks, len, heads, dim;
};

// The encoder's shapes (chunk 64 + [CLS] = 65 rows, D 64 and 128, tiny's chunk 32 + 1 with D 32), rows fewer
// than the warps of a block, a single row, and a D that is no multiple of 32.
const std::vector<Case> kCases = {
    {"T65_d64_h8", 12, 65, 8, 64},  {"T65_d128_h4", 6, 65, 4, 128}, {"T33_d32_h4", 16, 33, 4, 32},
    {"T3_d64_h2", 5, 3, 2, 64},     {"T1_d64_h2", 4, 1, 2, 64},     {"T17_d40_h3", 7, 17, 3, 40},
    {"T97_d64_h2", 3, 97, 2, 64},
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

Tensor nan_tensor(const Shape& shape, DType dtype) {
  return Tensor::full(shape, std::numeric_limits<double>::quiet_NaN(), dtype).to(Device::cuda);
}

bool has_nan(const Tensor& t) {
  for (double x : host(t).to_vector())
    if (std::isnan(x)) return true;
  return false;
}

double norm(const Tensor& t) {
  double s = 0;
  for (double x : host(t).to_vector()) s += x * x;
  return std::sqrt(s);
}

void expect_close(const char* what, const Tensor& gpu_result, const Tensor& ref, double tol) {
  ASSERT_FALSE(has_nan(gpu_result)) << what << ": NaN entries (unwritten or poisoned)";
  const double err = relative_error(host(gpu_result).to(DType::f32), ref);
  EXPECT_LT(err, tol) << what << ": relative error in norm";
}

class BlockAttentionParity : public ::testing::TestWithParam<std::tuple<Case, DType>> {};

TEST_P(BlockAttentionParity, ForwardBackwardMatchCpuOnPoisonedOutputs) {
  HSA_REQUIRE_GPU();
  const Case c = std::get<0>(GetParam());
  const DType dtype = std::get<1>(GetParam());
  const double tol = tol_for(dtype);
  const Shape shape{c.blocks, c.len, c.heads, c.dim};
  const uint64_t seed = uint64_t(c.len * 131 + c.dim * 7 + c.heads);
  Tensor q = randn(shape, seed + 1, 1.5, dtype), k = randn(shape, seed + 2, 1.5, dtype),
         v = randn(shape, seed + 3, 1.0, dtype), dout = randn(shape, seed + 4, 1.0, dtype);
  const double scale = 1.0 / std::sqrt(double(c.dim));
  const Tensor qf = q.to(DType::f32), kf = k.to(DType::f32), vf = v.to(DType::f32), df = dout.to(DType::f32);
  const ops::BlockAttentionOut ref = ops::block_attention_forward(qf, kf, vf, scale);
  const ops::BlockAttentionGrads ref_g = ops::block_attention_backward(df, qf, kf, vf, ref, scale);

  ASSERT_TRUE(cuda::block_attention_supported({c.blocks, c.len, c.heads, c.dim}));
  Tensor qd = gpu(q), kd = gpu(k), vd = gpu(v), dd = gpu(dout);
  Tensor out = nan_tensor(shape, dtype), lse = nan_tensor({c.blocks, c.len, c.heads}, DType::f32);
  Tensor dq = nan_tensor(shape, dtype), dk = nan_tensor(shape, dtype), dv = nan_tensor(shape, dtype);
  const BlockAttentionDims dims{c.blocks, c.len, c.heads, c.dim};
  auto run = [&]<class T>() {
    cuda::block_attention_forward<T>(qd.data<T>(), kd.data<T>(), vd.data<T>(), out.data<T>(), lse.data<float>(), dims,
                                     scale);
    cuda::block_attention_backward<T>(dd.data<T>(), qd.data<T>(), kd.data<T>(), vd.data<T>(), out.data<T>(),
                                      lse.data<float>(), dq.data<T>(), dk.data<T>(), dv.data<T>(), dims, scale);
  };
  if (dtype == DType::f32)
    run.operator()<float>();
  else
    run.operator()<bf16>();
  cuda::synchronize();

  expect_close("out", out, ref.out, tol);
  expect_close("lse", lse, ref.lse, tol);
  expect_close("dv", dv, ref_g.dv, tol);
  if (c.len == 1) {  // one row: P = 1 and dS = dout.v - dout.out = 0 up to rounding: dq, dk ~ 0 next to dv
    for (const Tensor* t : {&dq, &dk}) {
      ASSERT_FALSE(has_nan(*t));
      EXPECT_LT(norm(*t), tol * norm(ref_g.dv));
    }
    return;
  }
  expect_close("dq", dq, ref_g.dq, tol);
  expect_close("dk", dk, ref_g.dk, tol);
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<Case, DType>>& info) {
  return std::string(std::get<0>(info.param).name) + "_" + std::string(dtype_name(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, BlockAttentionParity,
                         ::testing::Combine(::testing::ValuesIn(kCases), ::testing::Values(DType::f32, DType::bf16)),
                         case_name);

}  // namespace

// The op layer dispatches cuda tensors to the kernels (outputs carved from a poisoned allocator cache) and
// matches the CPU op; two backward runs agree bit for bit (no atomics).
TEST(BlockAttentionCuda, OpDispatchMatchesCpuAndIsDeterministic) {
  HSA_REQUIRE_GPU();
  const Shape shape{10, 65, 4, 64};
  const double scale = 0.125;
  for (DType dtype : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    Tensor q = random_input(shape, 31, dtype), k = random_input(shape, 32, dtype), v = random_input(shape, 33, dtype),
           dout = random_input(shape, 34, dtype);
    const Tensor qf = q.to(DType::f32), kf = k.to(DType::f32), vf = v.to(DType::f32), df = dout.to(DType::f32);
    const ops::BlockAttentionOut ref = ops::block_attention_forward(qf, kf, vf, scale);
    const ops::BlockAttentionGrads ref_g = ops::block_attention_backward(df, qf, kf, vf, ref, scale);
    Tensor qd = gpu(q), kd = gpu(k), vd = gpu(v), dd = gpu(dout);
    poison_outputs({bytes_of(shape, dtype), bytes_of({10, 65, 4}, DType::f32)});
    const ops::BlockAttentionOut fwd = ops::block_attention_forward(qd, kd, vd, scale);
    EXPECT_EQ(fwd.lse.dtype(), DType::f32);
    ASSERT_EQ(fwd.out.device(), Device::cuda);
    EXPECT_EQ(fwd.out.dtype(), dtype);
    expect_close("out", fwd.out, ref.out, tol_for(dtype));
    poison_outputs({bytes_of(shape, dtype)});
    const ops::BlockAttentionGrads a = ops::block_attention_backward(dd, qd, kd, vd, fwd, scale);
    const ops::BlockAttentionGrads b = ops::block_attention_backward(dd, qd, kd, vd, fwd, scale);
    expect_close("dq", a.dq, ref_g.dq, tol_for(dtype));
    expect_close("dk", a.dk, ref_g.dk, tol_for(dtype));
    expect_close("dv", a.dv, ref_g.dv, tol_for(dtype));
    EXPECT_EQ(host(a.dq).to_vector(), host(b.dq).to_vector());
    EXPECT_EQ(host(a.dk).to_vector(), host(b.dk).to_vector());
    EXPECT_EQ(host(a.dv).to_vector(), host(b.dv).to_vector());
  }
}

// Dims beyond the shared-memory bound are refused with a message that says why, not launched.
TEST(BlockAttentionCuda, TooLongBlocksAreRefused) {
  HSA_REQUIRE_GPU();
  EXPECT_FALSE(cuda::block_attention_supported({1, 300, 1, 64}));
  Tensor q = gpu(random_input({1, 300, 1, 64}, 1, DType::f32));
  try {
    ops::block_attention_forward(q, q, q, 0.125);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shared memory"), std::string::npos) << e.what();
  }
}

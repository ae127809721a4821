// The chunk routing kept from the chunk attention forward (ops/hsa_routing.h): forward, attention backward and
// retrieval backward give the same bits with the forward's routing as with each op sorting on its own, the sort
// runs once instead of three times (cuda::routing_builds), and a routing of other indices is refused. At the model
// level, a training step sorts once per HSA layer and its gradients do not change when the backwards sort again.
#include "cuda/hsa_decode.h"
#include "cuda/hsa_support.h"
#include "gpu/parity.h"
#include "model/model.h"
#include "model/param_spec.h"
#include "ops/hsa_attention.h"
#include "ops/retrieval.h"

#include <hsa/error.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace hsa;
using namespace hsa::testing;

namespace {

// The same dtype, shape and bytes (NaNs and signed zeros included).
void expect_same_bits(const Tensor& got, const Tensor& want, const std::string& what) {
  Tensor a = host(got).contiguous(), b = host(want).contiguous();
  ASSERT_EQ(a.dtype(), b.dtype()) << what;
  ASSERT_EQ(a.shape(), b.shape()) << what;
  EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), size_t(a.numel()) * dtype_size(a.dtype())), 0)
      << what << " differs with the forward's routing";
}

struct Case {
  int64_t B, L, HQ, H, D, S, K, C, dr;
  bool hot;  // every token picks chunk 0 in slot 0 (one item split over many blocks); else ~25% empty slots
};

// A selection and everything both backwards read, on the GPU. indices i32 [B, L, H, K] in [-1, C), duplicates
// allowed; the retrieval's forward outputs are stand-ins (its backward only has to be deterministic here).
struct Inputs {
  Tensor q, mem_k, mem_v, dout, qr, landmarks;
  ops::RetrievalOut retrieval;
  ops::RetrievalParams params;
  double scale;
};

Inputs make_inputs(const Case& c, DType dtype, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> idx;
  for (int64_t e = 0; e < c.B * c.L * c.H * c.K; ++e) {
    const bool first_slot = e % c.K == 0;
    int32_t v = -1;
    if (c.hot && first_slot) v = 0;
    else if (rng.uniform() > 0.25) v = int32_t(rng.below(uint64_t(c.C)));
    idx.push_back(v);
  }
  const Shape sel{c.B, c.L, c.H, c.K};
  Inputs in;
  in.q = gpu(random_input({c.B, c.L, c.HQ, c.D}, seed + 1, dtype));
  in.mem_k = gpu(random_input({c.B, c.C, c.S, c.H, c.D}, seed + 2, dtype));
  in.mem_v = gpu(random_input({c.B, c.C, c.S, c.H, c.D}, seed + 3, dtype));
  in.dout = gpu(random_input({c.B, c.L, c.HQ, c.D}, seed + 4, dtype));
  in.qr = gpu(random_input({c.B, c.L, c.H, c.dr}, seed + 5, dtype));
  in.landmarks = gpu(random_input({c.B, c.C, c.H, c.dr}, seed + 6, dtype));
  in.retrieval = {gpu(Tensor::from_i32(idx, sel)), gpu(rand_uniform(sel, seed + 7, 0.0, 1.0)),
                  gpu(randn(sel, seed + 8))};
  in.params = ops::RetrievalParams{c.S, c.K};
  in.scale = 1.0 / std::sqrt(double(c.D));
  return in;
}

struct Step {
  ops::HsaOut out;
  ops::HsaGrads grads;
  ops::RetrievalGrads retrieval_grads;
  bool kept_routing = false;
  int64_t builds = 0;  // routings built by the three calls
};

// What one HSA layer of a training step runs: the chunk attention forward, its backward, the retrieval backward;
// with `reuse`, both backwards take the forward's routing.
Step run_step(const Inputs& in, bool reuse) {
  const int64_t before = cuda::routing_builds();
  Step s;
  ops::HsaRouting routing;
  const Tensor& indices = in.retrieval.indices;
  s.out = ops::hsa_attention_forward(in.q, in.mem_k, in.mem_v, indices, in.retrieval.weights, in.scale,
                                     reuse ? &routing : nullptr);
  s.kept_routing = !routing.empty();
  s.grads = ops::hsa_attention_backward(in.dout, in.q, in.mem_k, in.mem_v, indices, in.retrieval.weights, s.out,
                                        in.scale, routing);
  s.retrieval_grads =
      ops::retrieval_backward(s.grads.dweights, in.qr, in.landmarks, in.retrieval, in.params, routing);
  cuda::synchronize();
  s.builds = cuda::routing_builds() - before;
  return s;
}

void expect_reuse_is_bit_identical(const Case& c, DType dtype) {
  SCOPED_TRACE(::testing::Message() << "B=" << c.B << " L=" << c.L << " HQ=" << c.HQ << " H=" << c.H
                                    << " D=" << c.D << " S=" << c.S << " K=" << c.K << " C=" << c.C
                                    << (c.hot ? " hot" : "") << " " << dtype_name(dtype));
  const Inputs in = make_inputs(c, dtype, 17);
  const Step fresh = run_step(in, false), reused = run_step(in, true);
  const bool decode = cuda::use_decode_path(HsaDims{c.B, c.L, c.HQ, c.H, c.D, c.C, c.S, c.K});
  // The decode path groups nothing: the forward keeps no routing and both backwards build their own.
  EXPECT_EQ(reused.kept_routing, !decode);
  EXPECT_EQ(fresh.builds, decode ? 2 : 3) << "forward, attention backward, retrieval backward: one sort each";
  EXPECT_EQ(reused.builds, decode ? 2 : 1) << "the forward's sort serves both backwards";
  expect_same_bits(reused.out.out, fresh.out.out, "out");
  expect_same_bits(reused.out.lse, fresh.out.lse, "lse");
  expect_same_bits(reused.grads.dq, fresh.grads.dq, "dq");
  expect_same_bits(reused.grads.dmem_k, fresh.grads.dmem_k, "dmem_k");
  expect_same_bits(reused.grads.dmem_v, fresh.grads.dmem_v, "dmem_v");
  expect_same_bits(reused.grads.dweights, fresh.grads.dweights, "dweights");
  expect_same_bits(reused.retrieval_grads.dqr, fresh.retrieval_grads.dqr, "dqr");
  expect_same_bits(reused.retrieval_grads.dlandmarks, fresh.retrieval_grads.dlandmarks, "dlandmarks");
}

class HsaRoutingReuse : public ::testing::Test {
 protected:
  void SetUp() override { HSA_REQUIRE_GPU(); }
};

const std::vector<Case> kCases = {
    {2, 37, 4, 2, 32, 16, 3, 5, 16, false},     // GQA 2, B = 2, H = 2, L not a tile multiple
    {1, 29, 6, 2, 16, 16, 5, 9, 8, false},      // GQA 3: entries do not fill a tile
    {1, 700, 16, 1, 128, 64, 8, 10, 32, false},  // the benchmark head shape (bf16: the register kernels)
    {1, 1536, 16, 1, 128, 64, 4, 24, 32, true},  // a hot chunk: split forward and backward blocks
    {2, 1100, 16, 2, 32, 16, 2, 64, 16, true},   // hot chunk per (b, r), many small items
    {2, 3, 4, 2, 32, 16, 3, 5, 16, false},       // B * L <= kDecodeTokens: the decode path keeps no routing
};

TEST_F(HsaRoutingReuse, F32ForwardAndBothBackwardsAreBitIdenticalWithOneSort) {
  for (const Case& c : kCases) expect_reuse_is_bit_identical(c, DType::f32);
}

TEST_F(HsaRoutingReuse, Bf16ForwardAndBothBackwardsAreBitIdenticalWithOneSort) {
  for (const Case& c : kCases) expect_reuse_is_bit_identical(c, DType::bf16);
}

// A routing goes with the very indices tensor (and C) it was built from: equal values in another tensor, or memory
// with another chunk count, are refused by name rather than silently grouped wrong.
TEST_F(HsaRoutingReuse, ARoutingOfOtherIndicesIsRefused) {
  const Case c{1, 64, 4, 1, 32, 16, 2, 4, 16, false};
  const Inputs in = make_inputs(c, DType::f32, 5);
  ops::HsaRouting routing;
  ops::HsaOut out = ops::hsa_attention_forward(in.q, in.mem_k, in.mem_v, in.retrieval.indices, in.retrieval.weights,
                                               in.scale, &routing);
  ASSERT_FALSE(routing.empty());
  const Tensor copy = in.retrieval.indices.clone();
  try {
    ops::hsa_attention_backward(in.dout, in.q, in.mem_k, in.mem_v, copy, in.retrieval.weights, out, in.scale,
                                routing);
    FAIL() << "expected the routing of other indices to be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hsa_attention_backward: the given routing groups another indices tensor"),
              std::string::npos)
        << e.what();
  }
  ops::RetrievalOut other = in.retrieval;
  other.indices = copy;
  try {
    ops::retrieval_backward(Tensor::zeros(copy.shape(), DType::f32, Device::cuda), in.qr, in.landmarks, other,
                            in.params, routing);
    FAIL() << "expected the routing of other indices to be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("retrieval_backward: the given routing groups another indices tensor"),
              std::string::npos)
        << e.what();
  }
  const Tensor fewer_landmarks = in.landmarks.slice(1, 0, c.C - 1).contiguous();
  try {
    ops::retrieval_backward(Tensor::zeros(copy.shape(), DType::f32, Device::cuda), in.qr, fewer_landmarks,
                            in.retrieval, in.params, routing);
    FAIL() << "expected a routing for another C to be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("built for C = 4 chunks, this call has C = 3"), std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(cuda::synchronize());
}

// ---- the model: one training step --------------------------------------------------------------------------------

Tensor random_ids(int64_t batch, int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(size_t(batch * n));
  for (auto& t : ids) t = int32_t(rng.below(256));
  return Tensor::from_i32(ids, {batch, n});
}

void expect_one_sort_per_hsa_layer(DType dtype) {
  SCOPED_TRACE(dtype_name(dtype));
  const ModelConfig config = ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/tiny.json");
  Model model(config, convert(init_parameters(config, 7, DType::f32), Device::cuda, dtype));
  const Tensor ids = random_ids(2, 6 * config.chunk_size + 2 * config.sliding_window + 13, 3);
  InferenceState state = model.new_state();
  ForwardCache cache;
  const int64_t before_forward = cuda::routing_builds();
  const Tensor logits = model.forward(ids, state, nullptr, &cache);
  cuda::synchronize();
  const int64_t forward_builds = cuda::routing_builds() - before_forward;
  int64_t hsa_layers = 0;
  for (const HsaCache& layer : cache.hsa)
    if (!layer.empty) {
      EXPECT_FALSE(layer.routing.empty()) << "the cache keeps the forward's routing";
      ++hsa_layers;
    }
  ASSERT_GT(hsa_layers, 0) << "the sequence is long enough for chunks to exist";
  EXPECT_EQ(forward_builds, hsa_layers);

  const Tensor dlogits = gpu(random_input(logits.shape(), 11, logits.dtype()));
  const int64_t before_backward = cuda::routing_builds();
  const TensorMap reused = model.backward(dlogits, 0.0, cache);
  cuda::synchronize();
  EXPECT_EQ(cuda::routing_builds() - before_backward, 0) << "both backwards take the forward's routing";

  ForwardCache without = cache;  // the same activations, the routings dropped: each backward sorts again
  for (HsaCache& layer : without.hsa) layer.routing = ops::HsaRouting();
  const int64_t before_rebuilt = cuda::routing_builds();
  const TensorMap rebuilt = model.backward(dlogits, 0.0, without);
  cuda::synchronize();
  EXPECT_EQ(cuda::routing_builds() - before_rebuilt, 2 * hsa_layers);

  ASSERT_EQ(reused.size(), rebuilt.size());
  for (const auto& [name, g] : rebuilt) {
    // The embedding's gradient sums repeated token ids with float atomics: its order varies from run to run.
    if (name == "embed.weight") continue;
    ASSERT_TRUE(reused.count(name)) << name;
    expect_same_bits(reused.at(name), g, name);
  }
}

TEST_F(HsaRoutingReuse, ATrainingStepSortsOncePerHsaLayerWithTheSameGradientsF32) {
  expect_one_sort_per_hsa_layer(DType::f32);
}

TEST_F(HsaRoutingReuse, ATrainingStepSortsOncePerHsaLayerWithTheSameGradientsBf16) {
  expect_one_sort_per_hsa_layer(DType::bf16);
}

}  // namespace

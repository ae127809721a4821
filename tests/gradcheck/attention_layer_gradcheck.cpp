// The SWA branch as the model runs it: RMSNorm, q/k/v projections, per-head qk-norm, RoPE, windowed GQA
// attention, output projection; and the chunk-memory builder (norm, NoPE keys with qk-norm, values, mean-pooled
// landmarks). Finite differences in f64 on the micro config's weights.
#include "common/gradcheck.h"
#include "model/attention_layer.h"
#include "model/chunk_memory.h"
#include "model/param_spec.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

namespace {
ModelConfig micro() { return ModelConfig::from_file(std::string(HSA_SOURCE_DIR) + "/configs/micro.json"); }
}  // namespace

TEST(AttentionLayerGradcheck, QkNormRopeWindowGqa) {
  ModelConfig config = micro();
  TensorMap params = init_parameters(config, 5, DType::f64);
  LayerContext ctx{config, params, "layers.0."};
  int64_t window = 5;
  Tensor x = randn64({2, 13, config.hidden_size}, 1), r = randn64({2, 13, config.hidden_size}, 2);
  auto loss = [&] { return dot(attention_forward(ctx, window, x, 3, nullptr, nullptr), r); };
  AttentionCache cache;
  attention_forward(ctx, window, x, 3, nullptr, &cache);
  TensorMap grads;
  Tensor dx = attention_backward(ctx, cache, r, grads);
  std::vector<GradInput> inputs{{"x", &x, dx}};
  for (const char* name : {"attn_norm.weight", "attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight",
                           "attn.o_proj.weight", "attn.q_norm.weight", "attn.k_norm.weight"})
    inputs.push_back({name, &params.at(ctx.name(name)), grads.at(ctx.name(name))});
  expect_gradients_match(loss, inputs);
}

TEST(MemoryBuilderGradcheck, KeysValuesAndLandmarks) {
  ModelConfig config = micro();
  TensorMap params = init_parameters(config, 6, DType::f64);
  LayerContext ctx{config, params, "memory."};
  int64_t L = 3 * config.chunk_size + 5;  // three chunks and an incomplete tail
  Tensor h = randn64({2, L, config.hidden_size}, 1);
  auto build = [&] {
    MemoryState state;
    memory_build_forward(ctx, h, state, nullptr);
    return state;
  };
  MemoryState probe = build();
  Tensor rk = randn64(probe.memory.mem_k().shape(), 2), rv = randn64(probe.memory.mem_v().shape(), 3),
         rl = randn64(probe.memory.landmarks().shape(), 4);
  auto loss = [&] {
    MemoryState s = build();
    return dot(s.memory.mem_k(), rk) + dot(s.memory.mem_v(), rv) + dot(s.memory.landmarks(), rl);
  };
  MemoryState state;
  MemoryBuildCache cache;
  memory_build_forward(ctx, h, state, &cache);
  MemoryGrads mg;
  mg.add(rk, rv, rl);
  TensorMap grads;
  Tensor dh = memory_build_backward(ctx, cache, mg, grads);
  std::vector<GradInput> inputs{{"h", &h, dh}};
  for (const char* name : {"norm.weight", "k_proj.weight", "v_proj.weight", "landmark_proj.weight", "k_norm.weight"})
    inputs.push_back({name, &params.at(ctx.name(name)), grads.at(ctx.name(name))});
  expect_gradients_match(loss, inputs);
}

// Mixture-of-Experts on the GPU, the device half of ops/moe (semantics exactly as in ops/moe.h). T = float |
// hsa::bf16 storage; every kernel accumulates in f32 and the GEMMs go through cuda::gemm (cuBLASLt, f32
// accumulation). Device pointers, contiguous:
//   x, y, dy, dx [N, dm] T; router [E, dm]; w_gate, w_up [E, F, dm]; w_down [E, dm, F]; shared_gate, shared_up
//   [NS, Fs, dm]; shared_down [NS, dm, Fs] (null when NS = 0); gradients alike, in T.
//   probs f32 [N, E]; experts i32 [N, k]; gates f32 [N, k];
//   act_gate, act_up T [d.act_elements()]: the layout of cpu::MoeRouting (routed experts in index order, each over
//   its tokens ascending, rows of F; then each shared expert over all N tokens, rows of Fs).
//
// Design. The router runs in f32 even for bf16 storage (x and router converted once; a small [N, E] GEMM), so
// top-k sees the logits the CPU sees. One warp per token does top-k, softmax and the renormalised gates. The N*k
// (token, slot) entries are grouped by expert with a stable counting sort on the device (cub radix sort on the
// expert id, ascending token order inside each expert); the per-expert counts become row offsets on the device
// and never reach the host. The routed experts' GEMMs are grouped GEMMs over those offsets (cuda/grouped_gemm.h,
// one launch per GEMM kind for all experts, grid sized from N*k); shared experts run cuBLASLt GEMMs over x itself.
// Every (token, slot) result lands in its own row of a per-entry buffer and a per-token kernel sums the rows in
// slot order: no atomics, deterministic. Nothing in either call waits for the device.
// Without CUDA, src/cuda_stub/ defines these entry points to throw.
#pragma once
#include "kernel/shapes.h"

#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

template <class T> struct MoeDeviceWeights {
  const T* router = nullptr;
  const T* w_gate = nullptr;
  const T* w_up = nullptr;
  const T* w_down = nullptr;
  const T* shared_gate = nullptr;  // null when d.num_shared = 0
  const T* shared_up = nullptr;
  const T* shared_down = nullptr;
};

template <class T> struct MoeDeviceGrads {
  T* router = nullptr;
  T* w_gate = nullptr;
  T* w_up = nullptr;
  T* w_down = nullptr;
  T* shared_gate = nullptr;
  T* shared_up = nullptr;
  T* shared_down = nullptr;
};

// Writes y, probs, experts, gates, act_gate, act_up (every element) and *aux_loss (one device double) =
// aux_coef * E * sum_e f_e P_e (aux_coef * cpu::moe_load_balance_loss).
template <class T>
void moe_forward(const T* x, const MoeDeviceWeights<T>& w, const MoeDims& d, double aux_coef, T* y,
                 float* probs, int32_t* experts, float* gates, T* act_gate, T* act_up, double* aux_loss);

// Overwrites dx and every gradient in dw (zeros for an expert no token chose). aux_scale = dloss/daux * coef.
// experts is validated on the device: an id outside [0, E) is recorded through input_error_record() and throws at
// the next synchronize(); until then no kernel indexes memory with it (the outputs of that call are garbage).
template <class T>
void moe_backward(const T* dy, double aux_scale, const T* x, const MoeDeviceWeights<T>& w, const MoeDims& d,
                  const float* probs, const int32_t* experts, const float* gates, const T* act_gate, const T* act_up,
                  T* dx, const MoeDeviceGrads<T>& dw);

}  // namespace hsa::cuda

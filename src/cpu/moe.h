// CPU Mixture-of-Experts kernels: softmax top-k router, SwiGLU experts grouped by expert, load-balancing loss.
//   x, y, dy, dx [N, dm]; router, drouter [E, dm]; probs [N, E]; experts i32 [N, k]; gates, dgates [N, k]
//   one expert (routed or shared): w_gate, w_up [F, dm]; w_down [dm, F]  (h = silu(x w_gate^T) * (x w_up^T),
//   out = h w_down^T)
//   act_gate, act_up: the pre-activation rows x w_gate^T, x w_up^T of every entry, laid out as MoeRouting says.
//
// The work unit is an *entry*, one (token, expert) pair. Entries are grouped by expert so that each expert runs
// dense GEMMs over the block of token rows that chose it, instead of N*k matrix-vector products.
#pragma once
#include "kernel/shapes.h"

#include <cstdint>
#include <vector>

namespace hsa::cpu {

// One expert's weights and, in backward, where its gradients go (overwritten). ffn = F of this expert.
template <class T>
struct MoeExpert {
  const T* w_gate = nullptr;
  const T* w_up = nullptr;
  const T* w_down = nullptr;
  int64_t ffn = 0;
  T* d_gate = nullptr;
  T* d_up = nullptr;
  T* d_down = nullptr;
};

// Which token rows each expert processes. Experts [0, E) are routed, [E, E + NS) shared (every token uses them).
// Entries of expert e are [begin[e], begin[e + 1]), tokens ascending. Entry i belongs to token token[i] at output
// position pos[i]: its top-k rank j for routed experts, k + s for shared expert s. Every (token, pos) pair is
// unique, so an entry can write its row of a per-slot buffer [N, k + NS, dm] without races.
// Expert e's activation rows (act_gate, act_up) start at element act_begin[e], one row of ffn_e per entry.
struct MoeRouting {
  int64_t tokens = 0, topk = 0, num_routed = 0, num_shared = 0;
  std::vector<int64_t> begin;      // [E + NS + 1]
  std::vector<int32_t> token;      // [entries]
  std::vector<int32_t> pos;        // [entries]
  std::vector<int64_t> act_begin;  // [E + NS + 1]
  int64_t slots_per_token() const { return topk + num_shared; }
  int64_t num_experts() const { return num_routed + num_shared; }
  int64_t entries() const { return begin.back(); }
  int64_t act_elements() const { return act_begin.back(); }
};

// Groups the routing decisions experts [N, k] (values in [0, E), checked) by expert.
MoeRouting moe_build_routing(const int32_t* experts, int64_t n, int64_t num_routed, int64_t topk, int64_t num_shared,
                             int64_t ffn_routed, int64_t ffn_shared);

// probs = softmax(x router^T) over E; experts = the top-k logits per token in descending order (ties -> lower
// index); gates = those probs renormalised to sum to 1.
template <class T>
void moe_router_forward(const T* x, const T* router, T* probs, int32_t* experts, T* gates, int64_t n, int64_t dm,
                        int64_t num_experts, int64_t topk);

// E * sum_e f_e P_e (the coefficient is the caller's): f_e = share of the N*k routing slots that chose e,
// P_e = mean_t probs[t, e].
template <class T>
double moe_load_balance_loss(const T* probs, const int32_t* experts, int64_t n, int64_t num_experts, int64_t topk);

// y = sum over each token's entries of gate * expert(x) (gate 1 for shared experts); fills act_gate, act_up.
// experts holds E + NS entries, routed first.
template <class T>
void moe_experts_forward(const T* x, const std::vector<MoeExpert<T>>& experts, const MoeRouting& routing,
                         const T* gates, T* act_gate, T* act_up, T* y, int64_t dm);

// Overwrites dx with the experts' contribution and dgates [N, k] with dloss/dgate; writes every expert's d_*.
template <class T>
void moe_experts_backward(const T* dy, const T* x, const std::vector<MoeExpert<T>>& experts, const MoeRouting& routing,
                          const T* gates, const T* act_gate, const T* act_up, T* dgates, T* dx, int64_t dm);

// Through the renormalised gates and the load-balancing term (aux_scale = dloss/daux * coef) into the router
// logits; overwrites drouter, *adds* to dx.
template <class T>
void moe_router_backward(const T* x, const T* router, const T* probs, const int32_t* experts, const T* gates,
                         const T* dgates, double aux_scale, T* dx, T* drouter, int64_t n, int64_t dm,
                         int64_t num_experts, int64_t topk);

}  // namespace hsa::cpu

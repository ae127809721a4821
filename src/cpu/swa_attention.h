// CPU sliding-window attention kernels (shapes as in ops/swa_attention.h, all contiguous).
// Work is split into (batch, KV head, block of 64 queries); the G = HQ/H query heads of one KV head are
// processed together, so each block is two small GEMMs against only the keys its window can reach.
#pragma once
#include <cstdint>

namespace hsa::cpu {

struct SwaShape {
  int64_t B, Lq, Lk, HQ, H, D;
  int64_t window, q_start, k_start;
  double scale;
};

template <class T> void swa_forward(const T* q, const T* k, const T* v, T* out, T* lse, const SwaShape& s);
// dk and dv are overwritten.
template <class T>
void swa_backward(const T* dout, const T* q, const T* k, const T* v, const T* out, const T* lse, T* dq, T* dk, T* dv,
                  const SwaShape& s);

}  // namespace hsa::cpu

// Softmax cross-entropy on the GPU (see ops/cross_entropy.h). T = float | hsa::bf16.
// logits, dlogits [n, v]; targets i32 [n]; lse [n] f32.
#pragma once
#include <hsa/dtype.h>

#include <cstdint>

namespace hsa::cuda {

// Writes lse and returns the loss summed over counted rows (in double, in a fixed order) and their count. It
// waits for the device (the loss is a host number), so a bad target throws here, naming its index.
struct CrossEntropySums {
  double total;
  int64_t count;
};
template <class T>
CrossEntropySums cross_entropy_forward(const T* logits, const int32_t* targets, float* lse, int64_t n, int64_t v,
                                       int32_t ignore_index);
// dlogits = (softmax - onehot) * dloss / count per counted row (count found on the device: no wait).
template <class T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const float* lse, T* dlogits, int64_t n,
                            int64_t v, int32_t ignore_index, double dloss);

}  // namespace hsa::cuda

// Argument checking and device preparation shared by the flash-style attention ops (block_attention,
// swa_attention): each saves (out, lse) in its forward and takes (dout, q, k, v, out, lse) in its backward, and
// the CUDA kernels work in the storage dtype of q while the CPU kernels work in the compute dtype.
#pragma once
#include <hsa/tensor.h>

namespace hsa::ops {

// The tensors of an attention backward as its kernels take them (contiguous, dtypes matched to the device).
struct AttentionBackwardInputs {
  Tensor q, k, v, dout, out, lse;
};

// Every CUDA attention kernel computes f32 and bf16 (f32 accumulation) in its storage dtype.
void check_cuda_attention_dtype(const char* op, const Tensor& q);

// Checks dout and out (shaped like q) and lse (lse_shape); returns the one device of all six tensors.
Device check_attention_backward(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout,
                                const Tensor& out, const Tensor& lse, const Shape& lse_shape);

// CUDA: no dtype conversions on the device; dout and out must come in the dtype of q, lse in f32 (what the
// forwards give). Call after the op's own CUDA limits are checked.
AttentionBackwardInputs cuda_attention_backward_inputs(const char* op, const Tensor& q, const Tensor& k,
                                                       const Tensor& v, const Tensor& dout, const Tensor& out,
                                                       const Tensor& lse);

// CPU: q, k, v in their compute dtype, dout, out and lse converted to the one of q.
AttentionBackwardInputs cpu_attention_backward_inputs(const Tensor& q, const Tensor& k, const Tensor& v,
                                                      const Tensor& dout, const Tensor& out, const Tensor& lse);

// Casts CPU gradients back to the storage dtypes of q, k and v.
void attention_grads_to_storage(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& q, const Tensor& k,
                                const Tensor& v);

}  // namespace hsa::ops

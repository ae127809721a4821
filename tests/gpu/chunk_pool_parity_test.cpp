#include "gpu/parity.h"
#include "ops/chunk_pool.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(ChunkPoolParity, ForwardBackwardWithATail) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16}) {
    const int64_t batch = 2, seq_len = 45, dim = 70, chunk = 8, chunks = seq_len / chunk;  // 5 tail tokens
    Tensor x = random_input({batch, seq_len, dim}, 1, dtype), dp = random_input({batch, chunks, dim}, 2, dtype);
    poison_outputs({bytes_of({batch, chunks, dim}, dtype)});
    expect_parity(ops::chunk_mean_forward(gpu(x), chunk), ops::chunk_mean_forward(x, chunk), tol_for(dtype),
                  "pooled");
    poison_outputs({bytes_of({batch, seq_len, dim}, dtype)});
    expect_parity(ops::chunk_mean_backward(gpu(dp), seq_len, chunk), ops::chunk_mean_backward(dp, seq_len, chunk),
                  tol_for(dtype), "dx");
  }
}

#include "gpu/parity.h"
#include "ops/rope.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

TEST(RopeParity, ForwardBackwardWithOffsets) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (int64_t offset : {int64_t(0), int64_t(5), int64_t(3'000'001)}) {
      Shape shape{2, 19, 3, 38};
      Tensor x = random_input(shape, 1 + offset, dtype), dy = random_input(shape, 2 + offset, dtype);
      poison_outputs({bytes_of(shape, dtype)});
      expect_parity(ops::rope_forward(gpu(x), offset, 10000.0), ops::rope_forward(x, offset, 10000.0),
                    tol_for(dtype), "y offset " + std::to_string(offset));
      poison_outputs({bytes_of(shape, dtype)});
      expect_parity(ops::rope_backward(gpu(dy), offset, 500.0), ops::rope_backward(dy, offset, 500.0),
                    tol_for(dtype), "dx offset " + std::to_string(offset));
    }
  }
}

// The model's head dim (64: packs of the half row), a half row that is one bf16 pack plus a tail (D = 20: width 1),
// and a misaligned input.
TEST(RopeParity, PackedHalvesOddHalvesAndMisalignedInputs) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16})
    for (int64_t head_dim : {int64_t(64), int64_t(16), int64_t(20)})
      for (bool misaligned : {false, true}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " D=" << head_dim << " misaligned=" << misaligned);
        Shape shape{2, 33, 3, head_dim};
        Tensor x = random_input(shape, 7 + head_dim, dtype);
        Tensor xg = misaligned ? gpu_misaligned(x) : gpu(x);
        poison_outputs({bytes_of(shape, dtype)});
        expect_parity(ops::rope_forward(xg, 11, 10000.0), ops::rope_forward(x, 11, 10000.0), tol_for(dtype), "y");
        poison_outputs({bytes_of(shape, dtype)});
        expect_parity(ops::rope_backward(xg, 11, 10000.0), ops::rope_backward(x, 11, 10000.0), tol_for(dtype), "dx");
      }
}

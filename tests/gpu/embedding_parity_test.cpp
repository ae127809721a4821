#include "gpu/parity.h"
#include "ops/embedding.h"

#include <gtest/gtest.h>

using namespace hsa;
using namespace hsa::testing;

namespace {
Tensor random_ids(const Shape& shape, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(shape_numel(shape)));
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
  return Tensor::from_i32(ids, shape);
}
}  // namespace

TEST(EmbeddingParity, ForwardBackwardWithRepeatedIds) {
  HSA_REQUIRE_GPU();
  for (DType dtype : {DType::f32, DType::bf16}) {
    const int64_t vocab = 23, dm = 67;  // 23 ids over 3*41 positions: every id repeats
    Tensor table = random_input({vocab, dm}, 1, dtype), ids = random_ids({3, 41}, vocab, 2),
           dy = random_input({3, 41, dm}, 3, dtype);
    poison_outputs({bytes_of({3, 41, dm}, dtype)});
    expect_parity(ops::embedding_forward(gpu(table), gpu(ids)), ops::embedding_forward(table, ids), tol_for(dtype),
                  "y");
    poison_outputs({bytes_of({vocab + 5, dm}, dtype)});
    // vocab_size beyond the largest id: unused rows must come back zero.
    expect_parity(ops::embedding_backward(gpu(dy), gpu(ids), vocab + 5), ops::embedding_backward(dy, ids, vocab + 5),
                  tol_for(dtype), "dtable");
  }
}

TEST(EmbeddingParity, BadIdInBackwardThrowsAtSync) {
  HSA_REQUIRE_GPU();
  Tensor dy = gpu(randn({3, 4}, 1)), ids = gpu(Tensor::from_i32({0, -2, 1}, {3}));
  Tensor dtable = ops::embedding_backward(dy, ids, 2);
  try {
    cuda::synchronize();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("embedding_backward: 'ids' holds an id outside the vocabulary: -2 at flat "
                                         "index 1, outside [0, 2)"),
              std::string::npos)
        << e.what();
  }
}

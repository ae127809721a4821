#include "common/error_text.h"
#include "common/gradcheck.h"
#include "ops/embedding.h"

#include <gtest/gtest.h>

#include <string>

using namespace hsa;
using namespace hsa::testing;


TEST(Embedding, ForwardGathersRows) {
  Tensor table = randn({10, 6}, 1);
  Tensor ids = Tensor::from_i32({3, 0, 9, 3, 7, 1}, {2, 3});
  Tensor y = ops::embedding_forward(table, ids);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 6}));
  EXPECT_EQ(y.dtype(), DType::f32);
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 3; ++b) {
      int64_t id = static_cast<int64_t>(ids.item({a, b}));
      for (int64_t k = 0; k < 6; ++k) EXPECT_EQ(y.item({a, b, k}), table.item({id, k}));
    }
}

TEST(Embedding, BackwardAccumulatesRepeatedIds) {
  // ids 4 appears three times, 2 once; every other row of dtable must be exactly zero.
  Tensor ids = Tensor::from_i32({4, 2, 4, 4}, {4});
  Tensor dy = randn({4, 5}, 2, 1.0, DType::f64);
  Tensor dtable = ops::embedding_backward(dy, ids, 7);
  ASSERT_EQ(dtable.shape(), (Shape{7, 5}));
  EXPECT_EQ(dtable.dtype(), DType::f64);
  for (int64_t k = 0; k < 5; ++k) {
    EXPECT_DOUBLE_EQ(dtable.item({4, k}), dy.item({0, k}) + dy.item({2, k}) + dy.item({3, k}));
    EXPECT_DOUBLE_EQ(dtable.item({2, k}), dy.item({1, k}));
    for (int64_t v : {0, 1, 3, 5, 6}) EXPECT_EQ(dtable.item({v, k}), 0.0);
  }
}

TEST(Embedding, BackwardMatchesNaiveScatterAndIsDeterministic) {
  // Many positions onto few ids (heavy collisions), enough work to run multithreaded.
  const int64_t n = 4096, dm = 24, vocab = 13;
  std::vector<int32_t> idv(n);
  Rng rng(5);
  for (auto& id : idv) id = static_cast<int32_t>(rng.below(vocab));
  Tensor ids = Tensor::from_i32(idv, {64, 64});
  Tensor dy = randn({64, 64, dm}, 6);
  Tensor got = ops::embedding_backward(dy, ids, vocab);
  std::vector<double> ref(vocab * dm, 0.0);
  std::vector<double> dyv = dy.to_vector();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < dm; ++k) ref[idv[i] * dm + k] += dyv[i * dm + k];
  EXPECT_LT(relative_error(got, Tensor::from_values(ref, {vocab, dm}, DType::f64)), 1e-6);
  Tensor again = ops::embedding_backward(dy, ids, vocab);
  EXPECT_EQ(max_abs_diff(got, again), 0.0);
}

TEST(Embedding, Bf16MatchesF32) {
  Tensor table = randn({50, 32}, 3);
  Tensor ids = Tensor::from_i32({1, 49, 0, 1, 17, 33, 17, 2}, {8});
  Tensor ref = ops::embedding_forward(table, ids);
  Tensor got = ops::embedding_forward(table.to(DType::bf16), ids);
  EXPECT_EQ(got.dtype(), DType::bf16);
  EXPECT_LT(relative_error(got, ref), 1e-2);
  Tensor dy = randn({8, 32}, 4);
  Tensor dref = ops::embedding_backward(dy, ids, 50);
  Tensor dgot = ops::embedding_backward(dy.to(DType::bf16), ids, 50);
  EXPECT_EQ(dgot.dtype(), DType::bf16);
  EXPECT_LT(relative_error(dgot, dref), 1e-2);
}

TEST(Embedding, OutOfRangeIdNamesIdAndPosition) {
  Tensor table = randn({10, 4}, 1);
  std::string msg = error_of([&] { ops::embedding_forward(table, Tensor::from_i32({1, 2, 3, 10, 4, 5}, {2, 3})); });
  EXPECT_TRUE(has(msg, "embedding_forward: 'ids' holds 10 at index [1, 0], outside [0, 10)")) << msg;
  msg = error_of([&] { ops::embedding_forward(table, Tensor::from_i32({-1}, {1})); });
  EXPECT_TRUE(has(msg, "holds -1 at index [0]")) << msg;
  msg = error_of([&] { ops::embedding_backward(randn({2, 4}, 1), Tensor::from_i32({0, 12}, {2}), 10); });
  EXPECT_TRUE(has(msg, "embedding_backward: 'ids' holds 12 at index [1], outside [0, 10)")) << msg;
}

TEST(Embedding, BadShapesAndDtypesGiveClearErrors) {
  Tensor ids = Tensor::from_i32({0, 1}, {2});
  std::string msg = error_of([&] { ops::embedding_forward(randn({10}, 1), ids); });
  EXPECT_TRUE(has(msg, "embedding_forward: 'table' has shape [10] (1 dims), expected 2 dims")) << msg;
  msg = error_of([&] { ops::embedding_forward(randn({10, 4}, 1), randn({2}, 1)); });
  EXPECT_TRUE(has(msg, "embedding_forward: 'ids' has dtype f32, expected i32")) << msg;
  msg = error_of([&] { ops::embedding_forward(Tensor::zeros({10, 4}, DType::i32), ids); });
  EXPECT_TRUE(has(msg, "embedding_forward: 'table' has dtype i32")) << msg;
  msg = error_of([&] { ops::embedding_backward(randn({3, 4}, 1), ids, 10); });
  EXPECT_TRUE(has(msg, "embedding_backward: 'dy' has shape [3, 4], expected ids' shape [2]")) << msg;
  msg = error_of([&] { ops::embedding_backward(randn({2, 4}, 1), ids, 0); });
  EXPECT_TRUE(has(msg, "embedding_backward: vocab_size must be positive")) << msg;
}

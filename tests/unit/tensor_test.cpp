#include <hsa/arena.h>
#include <hsa/random.h>
#include <hsa/tensor.h>

#include <gtest/gtest.h>

using namespace hsa;

TEST(Tensor, ShapesStridesAndViews) {
  Tensor t = Tensor::from_values({0, 1, 2, 3, 4, 5}, {2, 3});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.strides(), (Shape{3, 1}));
  EXPECT_TRUE(t.is_contiguous());
  Tensor col = t.slice(1, 1, 2);
  EXPECT_FALSE(col.is_contiguous());
  EXPECT_EQ(col.to_vector(), (std::vector<double>{1, 4}));
  EXPECT_EQ(t.select(0, 1).to_vector(), (std::vector<double>{3, 4, 5}));
  EXPECT_EQ(t.view({3, -1}).shape(), (Shape{3, 2}));
  EXPECT_THROW(t.view({4, 2}), Error);
  EXPECT_THROW(col.view({2}), Error);
  col.set({1, 0}, 40);
  EXPECT_EQ(t.item({1, 1}), 40);  // views share storage
  EXPECT_EQ(t.clone().to_vector(), t.to_vector());
}

TEST(Tensor, DtypeConversionsRoundTrip) {
  Tensor x = randn({64}, 7);
  Tensor b = x.to(DType::bf16);
  EXPECT_EQ(b.nbytes(), 128u);
  std::vector<double> a = x.to_vector(), c = b.to(DType::f32).to_vector();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], c[i], std::abs(a[i]) * (1.0 / 128));
  EXPECT_EQ(bf16::to_float(bf16::from_float(1.0f)), 1.0f);
  EXPECT_THROW(x.data<double>(), Error);
  EXPECT_EQ(parse_dtype("bf16"), DType::bf16);
  EXPECT_THROW(parse_dtype("f16"), Error);
}

TEST(Tensor, ArenaScopeServesAllocations) {
  Arena arena(1 << 16);
  {
    ArenaScope scope(arena);
    Tensor a = Tensor::zeros({100}, DType::f32);
    Tensor b = Tensor::zeros({1 << 16}, DType::f32);  // larger than a block
    EXPECT_GE(arena.used_bytes(), 400u + (4u << 16));
  }
  Tensor c = Tensor::zeros({10});
  size_t used = arena.used_bytes();
  EXPECT_EQ(used, arena.peak_bytes());
  arena.reset();
  EXPECT_EQ(arena.used_bytes(), 0u);
  EXPECT_GE(arena.reserved_bytes(), used);
}

TEST(Tensor, RandomIsDeterministic) {
  EXPECT_EQ(randn({16}, 3).to_vector(), randn({16}, 3).to_vector());
  EXPECT_NE(randn({16}, 3).to_vector(), randn({16}, 4).to_vector());
}

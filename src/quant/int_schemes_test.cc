// Tests of the plain integer schemes: names, the textbook examples worked by hand, the RTN half-step bound
// on random rows (seed printed), zero ranges, packing, and bits per weight.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "qforge/quant/int_schemes.h"

namespace qforge {
namespace {

IntScheme Scheme(const std::string& name) {
  auto s = ParseIntScheme(name);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return *s;
}

TEST(IntSchemes, NamesParseCaseInsensitiveAndUnknownListsValid) {
  const auto names = IntSchemeNames();
  EXPECT_EQ(names.size(), 14u);
  for (const auto& n : names) {
    auto s = ParseIntScheme(n);
    ASSERT_TRUE(s.ok()) << n;
    EXPECT_EQ(s->name, n);
  }
  auto upper = ParseIntScheme("INT4-ASYM-G128");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(upper->bits, 4);
  EXPECT_FALSE(upper->symmetric);
  EXPECT_EQ(upper->group_size, 128u);
  auto ch = ParseIntScheme("int8-sym-channel");
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(ch->granularity, IntGranularity::kChannel);
  auto bad = ParseIntScheme("int3-sym-g16");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().reason().find("int3-sym-g16"), std::string::npos);
  for (const auto& n : names) EXPECT_NE(bad.status().reason().find(n), std::string::npos) << n;
}

// The introductory example: absmax 1.0 -> scale 1/127, and 0.87142 * 127 = 110.67 -> 111.
TEST(IntSchemes, TextbookInt8SymmetricPerTensor) {
  const IntScheme s = Scheme("int8-sym-tensor");
  const float x[6] = {0.87142f, -1.0f, 0.5f, 0.0f, 1.0f, -0.0039f};
  auto q = QuantizeInt(s, x, 2, 3);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  ASSERT_EQ(q->scales.size(), 1u);
  EXPECT_FLOAT_EQ(q->scales[0], 1.0f / 127.0f);
  EXPECT_EQ(static_cast<int8_t>(q->qweight[0]), 111);
  EXPECT_EQ(static_cast<int8_t>(q->qweight[1]), -127);
  EXPECT_EQ(static_cast<int8_t>(q->qweight[2]), 64);  // 63.5 rounds away from zero
  EXPECT_EQ(static_cast<int8_t>(q->qweight[3]), 0);
  EXPECT_EQ(static_cast<int8_t>(q->qweight[4]), 127);
  EXPECT_EQ(static_cast<int8_t>(q->qweight[5]), 0);  // -0.495 -> 0
  EXPECT_EQ(QuantizeSymmetric(0.87142f, 1.0f / 127.0f, 127), 111);
  float out[6];
  ASSERT_TRUE(DequantizeInt(*q, out).ok());
  EXPECT_FLOAT_EQ(out[0], 111.0f / 127.0f);  // 0.87402
  EXPECT_NEAR(out[0], 0.87142f, 0.5f / 127.0f);
}

// Asymmetric by hand. int4: range [-1, 2] -> scale 3/15 = 0.2, zero = round(1/0.2) = 5.
TEST(IntSchemes, AsymmetricZeroPointByHand) {
  const IntScheme s = Scheme("int4-asym-g32");
  const float x[5] = {-1.0f, 2.0f, 0.0f, 0.45f, 1.33f};
  auto q = QuantizeInt(s, x, 1, 5);
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->scales.size(), 1u);
  EXPECT_FLOAT_EQ(q->scales[0], 0.2f);
  EXPECT_EQ(q->zeros[0], 5);
  // q: -1 -> -5+5 = 0; 2 -> 10+5 = 15; 0 -> 5; 0.45 -> round(2.25)+5 = 7; 1.33 -> round(6.65)+5 = 12.
  ASSERT_EQ(q->qweight.size(), 3u);
  EXPECT_EQ(q->qweight[0], 0x0F << 4 | 0x0);  // low nibble = column 0
  EXPECT_EQ(q->qweight[1], 7 << 4 | 5);
  EXPECT_EQ(q->qweight[2], 12);               // padding nibble is 0
  float out[5];
  ASSERT_TRUE(DequantizeInt(*q, out).ok());
  EXPECT_FLOAT_EQ(out[0], -1.0f);
  EXPECT_FLOAT_EQ(out[1], 2.0f);
  EXPECT_EQ(out[2], 0.0f);  // zero is exact
  EXPECT_FLOAT_EQ(out[3], 0.4f);
  EXPECT_FLOAT_EQ(out[4], 1.4f);

  // int8: range [-1, 3] -> scale 4/255, zero = round(63.75) = 64; 1.0 -> round(63.75) + 64 = 128.
  float scale = 0;
  int zero = 0;
  AsymmetricParams(-1.0f, 3.0f, 255, &scale, &zero);
  EXPECT_FLOAT_EQ(scale, 4.0f / 255.0f);
  EXPECT_EQ(zero, 64);
  EXPECT_EQ(QuantizeAsymmetric(1.0f, scale, zero, 255), 128);
  EXPECT_EQ(QuantizeAsymmetric(-1.0f, scale, zero, 255), 0);   // -63.75 -> -64 + 64
  EXPECT_EQ(QuantizeAsymmetric(3.0f, scale, zero, 255), 255);  // 191.25 -> 191 + 64
  // A range that does not contain 0 is widened to include it: [0.5, 2] -> [0, 2], zero 0.
  AsymmetricParams(0.5f, 2.0f, 15, &scale, &zero);
  EXPECT_FLOAT_EQ(scale, 2.0f / 15.0f);
  EXPECT_EQ(zero, 0);
}

TEST(IntSchemes, ZeroRangesGiveZeroScaleWithoutNaN) {
  for (const auto& name : IntSchemeNames()) {
    const IntScheme s = Scheme(name);
    std::vector<float> x(3 * 70, 0.0f);
    for (int c = 0; c < 70; ++c) x[70 + c] = 0.25f;  // a constant row
    auto q = QuantizeInt(s, x.data(), 3, 70);
    ASSERT_TRUE(q.ok()) << name;
    std::vector<float> out(x.size());
    ASSERT_TRUE(DequantizeInt(*q, out.data()).ok());
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_TRUE(std::isfinite(out[i])) << name << " " << i;
      if (x[i] == 0.0f) {
        EXPECT_EQ(out[i], 0.0f) << name << " " << i;
      }
      EXPECT_NEAR(out[i], x[i], 0.25f / (s.bits == 8 ? 127 : 7)) << name << " " << i;
    }
  }
  const float nan_row[2] = {1.0f, NAN};
  EXPECT_FALSE(QuantizeInt(Scheme("int8-sym-g32"), nan_row, 1, 2).ok());
}

// RTN: every element is within half a step of its value, for every scheme, on random rows of odd and even
// lengths (partial groups, nibble padding), with outliers and whole-zero groups mixed in.
TEST(IntSchemes, RoundToNearestErrorAtMostHalfAStep) {
  const uint32_t seed = std::random_device{}();
  std::printf("IntSchemes RTN property seed: %u\n", seed);
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::uniform_real_distribution<float> unif(-3.0f, 5.0f);
  const uint64_t lengths[] = {1, 7, 32, 64, 100, 128, 173, 256, 300};
  for (const auto& name : IntSchemeNames()) {
    const IntScheme s = Scheme(name);
    for (uint64_t cols : lengths) {
      const uint64_t rows = 1 + rng() % 6;
      std::vector<float> x(rows * cols);
      const int kind = static_cast<int>(rng() % 3);
      for (auto& v : x) v = kind == 0 ? 0.02f * gauss(rng) : kind == 1 ? unif(rng) : std::ldexp(gauss(rng), -20);
      if (x.size() > 10) x[rng() % x.size()] = 40.0f * gauss(rng);  // an outlier
      if (cols >= 64 && rows > 1) {
        for (uint64_t c = 0; c < 32; ++c) x[cols + c] = 0.0f;  // a zero group in row 1
      }
      auto q = QuantizeInt(s, x.data(), rows, cols);
      ASSERT_TRUE(q.ok()) << name;
      std::vector<float> out(x.size());
      ASSERT_TRUE(DequantizeInt(*q, out.data()).ok());
      const uint64_t groups = s.GroupsPerRow(cols);
      const uint64_t width = s.granularity == IntGranularity::kGroup ? s.group_size : cols;
      for (uint64_t r = 0; r < rows; ++r) {
        for (uint64_t c = 0; c < cols; ++c) {
          const uint64_t si = s.granularity == IntGranularity::kTensor ? 0 : r * groups + c / width;
          const float scale = q->scales[si];
          const float err = std::fabs(out[r * cols + c] - x[r * cols + c]);
          ASSERT_LE(err, scale * (0.5f + 1e-4f))
              << name << " seed " << seed << " cols " << cols << " r " << r << " c " << c << " x "
              << x[r * cols + c] << " scale " << scale;
        }
      }
    }
  }
}

TEST(IntSchemes, BitsPerWeight) {
  const uint64_t rows = 512, cols = 4096;
  struct Want {
    const char* name;
    double bpw;
  } want[] = {
      {"int8-sym-tensor", 8.0 + 32.0 / (rows * cols)},
      {"int8-sym-channel", 8.0 + 32.0 / cols},
      {"int8-sym-g32", 9.0},   {"int8-sym-g64", 8.5},     {"int8-sym-g128", 8.25},
      {"int8-asym-g32", 9.25}, {"int8-asym-g64", 8.625},  {"int8-asym-g128", 8.3125},
      {"int4-sym-g32", 5.0},   {"int4-sym-g64", 4.5},     {"int4-sym-g128", 4.25},
      {"int4-asym-g32", 5.25}, {"int4-asym-g64", 4.625},  {"int4-asym-g128", 4.3125},
  };
  for (const auto& w : want) EXPECT_DOUBLE_EQ(Scheme(w.name).BitsPerWeight(rows, cols), w.bpw) << w.name;
  // A partial last group costs a whole scale and zero; odd int4 rows round up to a whole byte.
  EXPECT_EQ(Scheme("int4-asym-g32").StorageBytes(2, 33), 2 * 17 + 2 * 2 * 5u);
}

TEST(IntSchemes, Int4SymmetricStoresOffsetEight) {
  const IntScheme s = Scheme("int4-sym-g32");
  const float x[4] = {-7.0f, 7.0f, 0.0f, 3.0f};
  auto q = QuantizeInt(s, x, 1, 4);
  ASSERT_TRUE(q.ok());
  EXPECT_FLOAT_EQ(q->scales[0], 1.0f);
  EXPECT_EQ(q->qweight[0], (7 + 8) << 4 | (-7 + 8));
  EXPECT_EQ(q->qweight[1], (3 + 8) << 4 | 8);
}

}  // namespace
}  // namespace qforge

// F32, F16, BF16 rows: decode bit-exact with ggml's to_float over every 16-bit pattern (F16, BF16) and
// random 32-bit patterns (F32); encode bit-exact with ggml_quantize_chunk (round-to-nearest-even) on
// random and boundary floats; NaN stays NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "ggml_reference.h"
#include "qforge/core/fp16.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

std::vector<float> Decode(GgmlType t, const std::vector<uint8_t>& in, size_t n) {
  std::vector<float> y(n);
  FindQuantType(t)->decode(in.data(), y.data(), static_cast<int64_t>(n));
  return y;
}

std::vector<uint8_t> Encode(GgmlType t, const std::vector<float>& x) {
  std::vector<uint8_t> out(x.size() * FindQuantType(t)->layout().type_size);
  FindQuantType(t)->encode(x.data(), out.data(), static_cast<int64_t>(x.size()), nullptr);
  return out;
}

TEST(FloatTypes, Registered) {
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) ASSERT_NE(FindQuantType(t), nullptr);
}

TEST(FloatTypes, RoundTripExactForRepresentableValues) {
  std::vector<float> x = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 0.000061035156f, 5.9604645e-08f};
  EXPECT_EQ(Decode(GgmlType::F16, Encode(GgmlType::F16, x), x.size()), x);
  EXPECT_EQ(Decode(GgmlType::F32, Encode(GgmlType::F32, x), x.size()), x);
  std::vector<float> b = {0.0f, 1.0f, -3.0f, 4294967296.0f, 1.5f};
  EXPECT_EQ(Decode(GgmlType::BF16, Encode(GgmlType::BF16, b), b.size()), b);
  std::vector<float> nan = {std::nanf("")};
  EXPECT_TRUE(std::isnan(Decode(GgmlType::F16, Encode(GgmlType::F16, nan), 1)[0]));
  EXPECT_TRUE(std::isnan(Decode(GgmlType::BF16, Encode(GgmlType::BF16, nan), 1)[0]));
}

#if defined(QFORGE_HAVE_REFEREE)
bool SameBits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

TEST(FloatTypes, DecodeBitExactWithGgml) {
  std::vector<uint8_t> all(65536 * 2);
  for (uint32_t h = 0; h < 65536; ++h) {
    all[2 * h] = static_cast<uint8_t>(h);
    all[2 * h + 1] = static_cast<uint8_t>(h >> 8);
  }
  for (GgmlType t : {GgmlType::F16, GgmlType::BF16}) {
    std::vector<float> ours = Decode(t, all, 65536);
    std::vector<float> ref = testing::GgmlDecode(t, all.data(), 65536);
    for (uint32_t h = 0; h < 65536; ++h) ASSERT_TRUE(SameBits(ours[h], ref[h])) << GgmlTypeName(t) << " " << h;
  }
  std::mt19937 rng(5);
  std::vector<uint8_t> f32(4 * 10000);
  for (auto& b : f32) b = static_cast<uint8_t>(rng());
  std::vector<float> ours = Decode(GgmlType::F32, f32, 10000);
  std::vector<float> ref = testing::GgmlDecode(GgmlType::F32, f32.data(), 10000);
  for (int j = 0; j < 10000; ++j) ASSERT_TRUE(SameBits(ours[j], ref[j])) << j;
}

TEST(FloatTypes, EncodeBitExactWithGgml) {
  std::mt19937 rng(6);
  std::vector<float> x;
  for (int j = 0; j < 200000; ++j) {  // finite random bit patterns, biased towards the half range
    uint32_t u = rng();
    if (j % 2) u = (u & 0x807fffffu) | ((100u + rng() % 45u) << 23);
    float f = BitsFloat(u);
    if (std::isfinite(f)) x.push_back(f);
  }
  for (float f : {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e-8f, 2.9802322e-08f,
                  std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()})
    x.push_back(f);
  for (GgmlType t : {GgmlType::F16, GgmlType::BF16}) {
    std::vector<uint8_t> ours = Encode(t, x);
    std::vector<uint8_t> ref = testing::GgmlEncode(t, x.data(), 1, static_cast<int64_t>(x.size()));
    ASSERT_EQ(ours.size(), ref.size());
    for (size_t j = 0; j < x.size(); ++j)
      ASSERT_TRUE(ours[2 * j] == ref[2 * j] && ours[2 * j + 1] == ref[2 * j + 1])
          << GgmlTypeName(t) << " value " << x[j];
  }
}
#endif  // QFORGE_HAVE_REFEREE

}  // namespace
}  // namespace qforge

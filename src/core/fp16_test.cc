// fp16/bf16 conversions checked exhaustively against the compiler's own IEEE conversions (_Float16 on
// x86-64 is converted by the hardware/libgcc with round-to-nearest-even) and by bit-level properties.
#include "qforge/core/fp16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace qforge {
namespace {

bool IsNanHalf(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

TEST(Fp16, AllHalfValuesMatchCompilerConversion) {
  for (uint32_t h = 0; h < 65536; ++h) {
    _Float16 ref;
    uint16_t bits = static_cast<uint16_t>(h);
    std::memcpy(&ref, &bits, 2);
    float expect = static_cast<float>(ref);
    float got = F16ToF32(bits);
    if (IsNanHalf(bits)) {
      EXPECT_TRUE(std::isnan(got)) << h;
      EXPECT_TRUE(IsNanHalf(F32ToF16(got))) << h;
      continue;
    }
    ASSERT_EQ(FloatBits(expect), FloatBits(got)) << "half bits " << h;
    ASSERT_EQ(F32ToF16(got), bits) << "round trip of half bits " << h;
  }
}

TEST(Fp16, RoundingMatchesCompilerOnRandomAndBoundaryFloats) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<uint32_t> any;
  auto check = [](uint32_t bits) {
    float f = BitsFloat(bits);
    _Float16 ref = static_cast<_Float16>(f);
    uint16_t expect;
    std::memcpy(&expect, &ref, 2);
    uint16_t got = F32ToF16(f);
    if (std::isnan(f)) {
      ASSERT_TRUE(IsNanHalf(got)) << bits;
    } else {
      ASSERT_EQ(expect, got) << "float bits 0x" << std::hex << bits;
    }
  };
  for (int k = 0; k < 2000000; ++k) check(any(rng));
  // Every float around each half boundary and tie: midpoints between consecutive halves ±1 ulp.
  for (uint32_t h = 0; h < 0x7c00u; ++h) {
    float lo = F16ToF32(static_cast<uint16_t>(h));
    float hi = F16ToF32(static_cast<uint16_t>(h + 1));
    uint32_t mid = FloatBits((lo + hi) * 0.5f);
    for (uint32_t b : {mid - 1, mid, mid + 1, mid | 0x80000000u, (mid - 1) | 0x80000000u}) check(b);
  }
}

// F32ToF16Row may take a hardware path (F16C): it must give F32ToF16's bits for every float, NaN payloads
// included, in whole vectors and in the scalar tail (lengths 1-23).
TEST(Fp16, RowConversionMatchesScalarOnSampledBitPatterns) {
  std::vector<float> src;
  for (uint64_t bits = 0; bits < (uint64_t{1} << 32); bits += 4099) src.push_back(BitsFloat(static_cast<uint32_t>(bits)));
  for (uint32_t special : {0x7f800000u, 0xff800000u, 0x7f800001u, 0x7fc00000u, 0xffffffffu, 0x477ff000u, 0x477fefffu,
                           0x33000000u, 0x33000001u, 0x387fffffu, 0x38800000u, 0x80000000u}) {
    src.push_back(BitsFloat(special));
  }
  std::vector<uint16_t> got(src.size());
  F32ToF16Row(src.data(), got.data(), src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    ASSERT_EQ(got[i], F32ToF16(src[i])) << "float bits 0x" << std::hex << FloatBits(src[i]);
  }
  for (size_t n = 1; n < 24; ++n) {
    std::vector<uint16_t> part(n + 1, 0xabcd);
    F32ToF16Row(src.data() + 1000, part.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(part[i], F32ToF16(src[1000 + i])) << n;
    EXPECT_EQ(part[n], 0xabcd) << "wrote past the end, n=" << n;
  }
}

TEST(Fp16, SpecialValues) {
  EXPECT_EQ(F32ToF16(65504.0f), 0x7bffu);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00u);  // tie above max half rounds to Inf
  EXPECT_EQ(F32ToF16(-INFINITY), 0xfc00u);
  EXPECT_EQ(F32ToF16(5.9604645e-8f), 0x0001u);  // smallest subnormal 2^-24
  EXPECT_EQ(F32ToF16(2.98023224e-8f), 0x0000u); // 2^-25 ties to even (zero)
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000u);
  EXPECT_EQ(F16ToF32(0x3c00u), 1.0f);
}

TEST(Bf16, RoundTripAndRounding) {
  for (uint32_t h = 0; h < 65536; ++h) {
    uint16_t bits = static_cast<uint16_t>(h);
    float f = BF16ToF32(bits);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(f))));
      continue;
    }
    ASSERT_EQ(F32ToBF16(f), bits) << h;
  }
  EXPECT_EQ(F32ToBF16(BitsFloat(0x3f808000u)), 0x3f80u);  // tie to even (down)
  EXPECT_EQ(F32ToBF16(BitsFloat(0x3f818000u)), 0x3f82u);  // tie to even (up)
  EXPECT_EQ(F32ToBF16(BitsFloat(0x3f808001u)), 0x3f81u);  // above tie
  EXPECT_EQ(F32ToBF16(BitsFloat(0x7f7fffffu)), 0x7f80u);  // max float rounds to Inf
}

}  // namespace
}  // namespace qforge

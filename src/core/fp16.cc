// Half/bfloat16 conversions. Written from the IEEE 754 definitions: the float is rounded to the
// target's precision with round-to-nearest-even; exponents below the normal range produce subnormals,
// above it Inf. Checked exhaustively over all 65,536 half values in fp16_test.cc.
#include "qforge/core/fp16.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "qforge/core/cpu_features.h"
#define QF_HAVE_F16C_PATH 1
#endif

namespace qforge {

#ifdef QF_HAVE_F16C_PATH
namespace {
// The hardware conversion, 8 at a time, with round-to-nearest-even from the instruction (not from MXCSR): the
// same bits as F32ToF16 for every float, NaNs included (fp16_test.cc compares them). The runtime converts each
// decode token's keys and values with it, on one thread between two parallel steps (the scalar loop, with its
// branches, cost ~13 ns per value there).
__attribute__((target("avx,f16c"))) void F32ToF16RowF16c(const float* src, uint16_t* dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) dst[i] = F32ToF16(src[i]);
}
}  // namespace
#endif

float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return BitsFloat(sign | 0x7f800000u | (mant << 13));  // Inf / NaN (payload kept)
  if (exp != 0) return BitsFloat(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return BitsFloat(sign);  // ±0
  // Subnormal half: value = mant * 2^-24, exactly representable as a normal float.
  int e = 113;  // exponent of 2^-14 in float bias terms minus shifts below
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    --e;
  }
  mant &= 0x3ffu;
  return BitsFloat(sign | (static_cast<uint32_t>(e) << 23) | (mant << 13));
}

uint16_t F32ToF16(float f) {
  const uint32_t x = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // Inf or NaN
    if (abs == 0x7f800000u) return sign | 0x7c00u;
    uint16_t payload = static_cast<uint16_t>((abs >> 13) & 0x3ffu);
    return sign | 0x7c00u | 0x200u | payload;  // quiet NaN, never turns into Inf
  }
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520 -> Inf
  if (abs >= 0x38800000u) {                        // normal half range (>= 2^-14)
    uint32_t mant = abs & 0x7fffffu;
    uint32_t exp = (abs >> 23) - 112u;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // carry may bump exponent: still correct
    return sign | static_cast<uint16_t>(h);
  }
  // Subnormal or zero: value / 2^-24 rounded to an integer, nearest-even.
  if (abs < 0x33000000u) return sign;  // < 2^-25: rounds to 0 (2^-25 exactly ties to even 0)
  const uint32_t exp = abs >> 23;                 // 102..112
  const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - exp;              // so that result = mant >> shift
  uint32_t h = mant >> shift;
  const uint32_t rest = mant & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1u);
  if (rest > half || (rest == half && (h & 1u))) ++h;
  return sign | static_cast<uint16_t>(h);
}

uint16_t F32ToBF16(float f) {
  const uint32_t x = FloatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  const uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

void F16ToF32Row(const uint16_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = F16ToF32(src[i]);
}
void F32ToF16Row(const float* src, uint16_t* dst, size_t n) {
#ifdef QF_HAVE_F16C_PATH
  if (CpuHasF16c()) return F32ToF16RowF16c(src, dst, n);
#endif
  for (size_t i = 0; i < n; ++i) dst[i] = F32ToF16(src[i]);
}
void BF16ToF32Row(const uint16_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = BF16ToF32(src[i]);
}
void F32ToBF16Row(const float* src, uint16_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = F32ToBF16(src[i]);
}

}  // namespace qforge

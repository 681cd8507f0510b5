// Helpers shared by the AVX2 kernel files (matvec_avx2.cc: quantizers, legacy blocks, floats, the table;
// matvec_avx2_k.cc: k-quants and IQ4_XS). Every function carries the avx2,fma,f16c target attribute, so
// including this header compiles nothing for CPUs without it; callers run only after CpuHasAvx2().
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "qforge/kernels/matvec.h"

#define QF_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace qforge::avx2 {

QF_AVX2 inline float H2F(const uint8_t* p) {  // fp16 at any address -> float (F16C is exact)
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}
inline float LoadF32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}

QF_AVX2 inline int32_t HsumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

QF_AVX2 inline float HsumF32(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lane j of the result = the sum of the 8 int32 lanes of v[j] (exact integer adds).
QF_AVX2 inline __m256i Reduce8(const __m256i* v) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  // a = [v0..v3 low-half sums | v0..v3 high-half sums], b likewise for v4..v7.
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// Forces a vector product to be rounded here, so the compiler cannot fuse it into the following add (the
// lane-wise float steps must round exactly like the scalar spec's, which never fuses).
QF_AVX2 inline __m256 KeepV(__m256 v) {
  __asm__("" : "+x"(v));
  return v;
}

// CombineK (dot_scalar.h) in 8 independent lanes (one per row or activation), with the spec's operands and
// roundings: s + (Keep(Keep(dy * dx) * isum) - Keep(Keep(dy * dmin) * summs)).
QF_AVX2 inline __m256 CombineK8(__m256 s, __m256i isum, __m256i summs, __m256 dx, __m256 dmin, __m256 dy) {
  const __m256 dall = KeepV(_mm256_mul_ps(dy, dx)), dm = KeepV(_mm256_mul_ps(dy, dmin));
  const __m256 a = KeepV(_mm256_mul_ps(dall, _mm256_cvtepi32_ps(isum)));
  const __m256 b = KeepV(_mm256_mul_ps(dm, _mm256_cvtepi32_ps(summs)));
  return _mm256_add_ps(s, _mm256_sub_ps(a, b));
}

// 32 nibbles -> 32 bytes: low nibbles of the 16 bytes first, then the high nibbles (the legacy block order).
QF_AVX2 inline __m256i Nibbles32(const uint8_t* p) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
  return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

// int32 lanes of sum x*y over byte pairs, x and y signed with |x| <= 128, |y| <= 127 (so the int16 pair sums
// of maddubs cannot saturate: 2 * 128 * 127 < 32767).
QF_AVX2 inline __m256i DotI8(__m256i x, __m256i y) {
  const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}
// Same with unsigned x in 0..63 (2 * 63 * 127 < 32767), each int16 pair sum scaled by `scale` (int16 lanes).
QF_AVX2 inline __m256i DotU8Scaled(__m256i x, __m256i y, __m256i scale) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), scale);
}
QF_AVX2 inline __m256i LoadBytes(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Scales for the two 16-element halves of a 32-byte vector: low 128-bit lane a, high lane b (int16).
QF_AVX2 inline __m256i Scales2(int a, int b) {
  return _mm256_setr_m128i(_mm_set1_epi16(static_cast<int16_t>(a)), _mm_set1_epi16(static_cast<int16_t>(b)));
}

// The 12 packed Q4_K/Q5_K scale bytes -> 8 six-bit scales and 8 six-bit mins (byte j of *scales / *mins is
// sub-block j's), with 32-bit word operations instead of a per-byte loop: bytes 0..3 hold scales 0..3 (low
// 6 bits) and the top 2 bits of scales 4..7; bytes 4..7 the same for the mins; bytes 8..11 the low 4 bits of
// scales 4..7 (low nibbles) and of mins 4..7 (high nibbles). Same values as UnpackScalesMinsK4 (dot_scalar.h).
inline void ScalesMinsK4(const uint8_t* s, uint64_t* scales, uint64_t* mins) {
  uint32_t a, b, c;
  std::memcpy(&a, s, 4);
  std::memcpy(&b, s + 4, 4);
  std::memcpy(&c, s + 8, 4);
  const uint32_t sc_lo = a & 0x3F3F3F3Fu, m_lo = b & 0x3F3F3F3Fu;
  const uint32_t sc_hi = (c & 0x0F0F0F0Fu) | ((a >> 2) & 0x30303030u);  // bits 6..7 of each byte -> 4..5
  const uint32_t m_hi = ((c >> 4) & 0x0F0F0F0Fu) | ((b >> 2) & 0x30303030u);
  *scales = sc_lo | static_cast<uint64_t>(sc_hi) << 32;
  *mins = m_lo | static_cast<uint64_t>(m_hi) << 32;
}

// Row dots of matvec_avx2_k.cc (same contract as the scalar Dot* functions of dot_scalar.h).
float DotQ2_K(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ3_K(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ4_K(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ5_K(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ6_K(const uint8_t* w, const uint8_t* act, int64_t n);
float DotIQ4_XS(const uint8_t* w, const uint8_t* act, int64_t n);
// Batched products (MatVecKernel::rows_batch contract) of matvec_avx2_k.cc.
void RowsBatchQ4_K(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y, size_t ldy,
                   int64_t r0, int64_t r1);
void RowsBatchQ6_K(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y, size_t ldy,
                   int64_t r0, int64_t r1);

}  // namespace qforge::avx2
#endif

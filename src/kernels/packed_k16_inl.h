// Shared by the AVX-512 VNNI and AMX kernels on the k16 layouts (packed_k16_avx512.cc, packed_k16_amx.cc): what
// their prepare() (packed_k16_avx512.cc) writes, and the per-super-block float steps of the Q4_K / Q6_K specs
// for 16 rows at once. x86-64 translation units only.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "activation_quant.h"
#include "packed_avx512_inl.h"
#include "packed_k16.h"
#include "qforge/kernels/matvec.h"

namespace qforge {

// After the standard ActQ8_K bytes, per super-block: 4 int32, each the int16 pair (bsums[4p] + bsums[4p+1],
// bsums[4p+2] + bsums[4p+3]) that vpdpwssd multiplies with a Q4_K row's (m[2p], m[2p+1]) (|sum| <= 32 * 128).
inline size_t K16ActExtraOffset(int64_t nsb) { return static_cast<size_t>(nsb) * sizeof(ActQ8_K); }

struct K16ActView {
  const ActQ8_K* y;
  const int32_t* bpairs;
};

inline K16ActView MakeK16ActView(const PreparedActivation& act) {
  const int64_t nsb = act.cols / 256;
  return {reinterpret_cast<const ActQ8_K*>(act.quantized.data()),
          reinterpret_cast<const int32_t*>(act.quantized.data() + K16ActExtraOffset(nsb))};
}

#define QF_K16_AVX512 QF_PACKED_AVX512

namespace k16 {

// Opaque to the optimizer: keeps each product rounded on its own (no FMA contraction), as Keep() does.
QF_K16_AVX512 inline __m512 KeepV(__m512 v) {
  __asm__("" : "+v"(v));
  return v;
}

// CombineK for 16 rows: s + (Keep(Keep(dy * d) * isum) - Keep(Keep(dy * dmin) * summs)), d and dmin as fp16.
QF_K16_AVX512 inline __m512 Combine(__m512 s, __m512i isum, __m512i summs, __m512 d, __m512 dmin, float dy) {
  const __m512 vy = _mm512_set1_ps(dy);
  const __m512 dall = KeepV(_mm512_mul_ps(vy, d)), dm = KeepV(_mm512_mul_ps(vy, dmin));
  const __m512 a = KeepV(_mm512_mul_ps(dall, _mm512_cvtepi32_ps(isum)));
  const __m512 b = KeepV(_mm512_mul_ps(dm, _mm512_cvtepi32_ps(summs)));
  return _mm512_add_ps(s, _mm512_sub_ps(a, b));
}

QF_K16_AVX512 inline __m512 LoadF16x16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

QF_K16_AVX512 inline __m512i ScaleQ4_K(const uint8_t* sb, int s) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sb + 2112 + 16 * s)));
}

// summs for 16 rows: 4 vpdpwssd of the rows' (m[2p], m[2p+1]) against the activation's paired bsums.
QF_K16_AVX512 inline __m512i Summs(const uint8_t* sb, const int32_t* bpairs) {
  __m512i summs = _mm512_setzero_si512();
  for (int p = 0; p < 4; ++p)
    summs = _mm512_dpwssd_epi32(
        summs, _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 2240 + 32 * p))),
        _mm512_set1_epi32(bpairs[p]));
  return summs;
}

QF_K16_AVX512 inline __m512 CombineQ4_K(__m512 acc, __m512i isum, const uint8_t* sb, const int32_t* bpairs, float dy) {
  return Combine(acc, isum, Summs(sb, bpairs), LoadF16x16(sb + 2048), LoadF16x16(sb + 2080), dy);
}

QF_K16_AVX512 inline __m512i ScaleQ6_K(const uint8_t* sb, int s) {
  return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sb + 3072 + 16 * s)));
}

// The 6-bit weights of chunk c (< 8) of half h for the 4 element quarters m: q[m] holds elements
// 128h + 32m + 4c + k, of sub-block 8h + 2m + c / 4. Low nibbles from step 8h + c's ql chunk 0 (m = 0, 2) and
// ql chunk 1 (m = 1, 3), the high bit pairs from its qh chunk. (16-bit shifts move bits across bytes only into
// positions the masks drop.)
QF_K16_AVX512 inline void UnpackQ6_K(const uint8_t* sb, int h, int c, __m512i* q) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), hi2 = _mm512_set1_epi8(0x30);
  const __m512i l0 = _mm512_loadu_si512(sb + Q6_K16Ql(h, 0, c));
  const __m512i l1 = _mm512_loadu_si512(sb + Q6_K16Ql(h, 1, c));
  const __m512i qh = _mm512_loadu_si512(sb + Q6_K16Qh(h, c));
  // (nibble) | (qh bits & 0x30): 0xF8 is a | (b & c) for vpternlogd's (a, b, c).
  q[0] = _mm512_ternarylogic_epi32(_mm512_and_si512(l0, low4), _mm512_slli_epi16(qh, 4), hi2, 0xF8);
  q[1] = _mm512_ternarylogic_epi32(_mm512_and_si512(l1, low4), _mm512_slli_epi16(qh, 2), hi2, 0xF8);
  q[2] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(l0, 4), low4), qh, hi2, 0xF8);
  q[3] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(l1, 4), low4), _mm512_srli_epi16(qh, 2), hi2,
                                   0xF8);
}

// The start value of sub-block s's integer dot: -32 * bsums[s] (the weights are fed as q, not q - 32).
QF_K16_AVX512 inline __m512i StartQ6_K(const ActQ8_K& y, int s) { return _mm512_set1_epi32(-32 * y.bsums[s]); }

QF_K16_AVX512 inline __m512 CombineQ6_K(__m512 acc, __m512i isum, const uint8_t* sb, float dy) {
  const __m512 zero = _mm512_setzero_ps();
  return Combine(acc, isum, _mm512_setzero_si512(), LoadF16x16(sb + 3328), zero, dy);
}

}  // namespace k16
}  // namespace qforge

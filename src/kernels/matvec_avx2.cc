// AVX2 (+FMA, F16C) matrix-vector kernels. Only the functions carry target attributes (the rest of the
// library stays baseline x86-64); matvec_simd.cc checks the CPU before handing these out.
// Contract: y[r] = W[r] · x like the scalar spec (dot_scalar.h). Activation quantizers give the same bytes as
// activation_quant.cc. Quantized dots compute each block's int32 exactly (integer sums are associative, so the
// SIMD order does not matter) and then call the same float combiners as the scalar spec: bit-exact.
// F32/F16 sum in float with 32 lanes instead of double: tolerance derived in kernels_test.cc.
#include "matvec_avx2.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstring>

#include "activation_quant.h"
#include "dot_scalar.h"
#include "qforge/quant/blocks.h"
#include "qforge/quant/k_blocks.h"

#define QF_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace qforge {
namespace {

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

// ---------------------------------------------------------------- activation quantizers

// roundf (half away from zero) of 8 floats of magnitude < 2^22, exactly: trunc, then add ±1 where the
// dropped fraction (computed exactly) is >= 0.5.
QF_AVX2 inline __m256 RoundHalfAway(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
  const __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
  const __m256 ge = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  return _mm256_add_ps(t, _mm256_and_ps(ge, _mm256_or_ps(sign, _mm256_set1_ps(1.0f))));
}

// 4 x 8 int32 (elements 0..31 in order) -> 32 int8 in order (values already within int8).
QF_AVX2 inline __m256i PackI32ToI8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);  // 0-3 8-11 | 4-7 12-15 (per 128-bit lane)
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i p = _mm256_packs_epi16(ab, cd);  // 0-3 8-11 16-19 24-27 | 4-7 12-15 20-23 28-31
  return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

QF_AVX2 inline float AbsMax(const float* x, int n) {
  __m256 m = _mm256_setzero_ps();
  for (int j = 0; j < n; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_loadu_ps(x + j)));
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// One Q8_0/Q8_1 block: stores fp16 d and q, returns sum(q) and the unrounded float d.
QF_AVX2 int32_t QuantizeQ8Block(const float* x, uint16_t* d_out, int8_t* qs, float* d_float) {
  const float amax = AbsMax(x, 32);
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  *d_out = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
  *d_float = d;
  const __m256 mul = _mm256_set1_ps(id);
  __m256i q[4];
  for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(RoundHalfAway(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), mul)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), PackI32ToI8(q[0], q[1], q[2], q[3]));
  return HsumI32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
}

QF_AVX2 void QuantizeQ8_0Avx2(const float* x, ActQ8_0* y, int64_t n) {
  float d;
  for (int64_t i = 0; i < n / 32; ++i) QuantizeQ8Block(x + 32 * i, &y[i].d, y[i].qs, &d);
}

QF_AVX2 void QuantizeQ8_1Avx2(const float* x, ActQ8_1* y, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i) {
    float d;
    const int32_t sum = QuantizeQ8Block(x + 32 * i, &y[i].d, y[i].qs, &d);
    y[i].s = _cvtss_sh(static_cast<float>(sum) * d, _MM_FROUND_TO_NEAREST_INT);
  }
}

QF_AVX2 void QuantizeQ8_KAvx2(const float* x, ActQ8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / 256; ++i, x += 256) {
    ActQ8_K& b = y[i];
    std::memset(&b, 0, sizeof(b));
    const float amax = AbsMax(x, 256);
    if (amax == 0.0f) continue;
    float max = 0.0f;  // the first element of largest magnitude, with its sign
    const __m256 vmax = _mm256_set1_ps(amax);
    for (int j = 0; j < 256; j += 8) {
      const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_loadu_ps(x + j));
      const int mask = _mm256_movemask_ps(_mm256_cmp_ps(a, vmax, _CMP_EQ_OQ));
      if (mask != 0) {
        max = x[j + __builtin_ctz(static_cast<unsigned>(mask))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 mul = _mm256_set1_ps(iscale);
    for (int j = 0; j < 256; j += 32) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k) {
        const __m256 v = _mm256_round_ps(_mm256_mul_ps(mul, _mm256_loadu_ps(x + j + 8 * k)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(127));
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(b.qs + j), PackI32ToI8(q[0], q[1], q[2], q[3]));
      b.bsums[j / 16] = static_cast<int16_t>(HsumI32(_mm256_add_epi32(q[0], q[1])));
      b.bsums[j / 16 + 1] = static_cast<int16_t>(HsumI32(_mm256_add_epi32(q[2], q[3])));
    }
    b.d = 1.0f / iscale;
  }
}

QF_AVX2 void QuantizeF16Avx2(const float* x, uint16_t* y, int64_t n) {
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + c),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + c), _MM_FROUND_TO_NEAREST_INT));
  for (; c < n; ++c) y[c] = _cvtss_sh(x[c], _MM_FROUND_TO_NEAREST_INT);
}

// ---------------------------------------------------------------- legacy 32-element blocks

QF_AVX2 float DotQ4_0Avx2(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_0*>(act);
  float sumf = 0;
  for (int64_t i = 0; i < n / 32; ++i, w += sizeof(BlockQ4_0)) {
    const __m256i qx = _mm256_sub_epi8(Nibbles32(w + 2), _mm256_set1_epi8(8));
    const int32_t sumi = HsumI32(DotI8(qx, LoadBytes(y[i].qs)));
    sumf = CombineQ4_0(sumf, sumi, H2F(w), _cvtsh_ss(y[i].d));
  }
  return sumf;
}

QF_AVX2 float DotQ8_0Avx2(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_0*>(act);
  float sumf = 0;
  for (int64_t i = 0; i < n / 32; ++i, w += sizeof(BlockQ8_0)) {
    const int32_t sumi = HsumI32(DotI8(LoadBytes(w + 2), LoadBytes(y[i].qs)));
    sumf = CombineQ8_0(sumf, sumi, H2F(w), _cvtsh_ss(y[i].d));
  }
  return sumf;
}

// The 5th bits of a Q5 block as 0x10 in the byte of every element whose bit is set (element order).
QF_AVX2 inline __m256i HighBits32(const uint8_t* qh) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  // Byte j gets qh byte j/8, then tests bit j%8 of it.
  const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(h)), shuf);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

QF_AVX2 float DotQ5_0Avx2(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_0*>(act);
  float sumf = 0;
  for (int64_t i = 0; i < n / 32; ++i, w += sizeof(BlockQ5_0)) {
    const __m256i q = _mm256_or_si256(Nibbles32(w + 6), HighBits32(w + 2));
    const int32_t sumi = HsumI32(DotI8(_mm256_sub_epi8(q, _mm256_set1_epi8(16)), LoadBytes(y[i].qs)));
    sumf = CombineQ5_0(sumf, sumi, H2F(w), _cvtsh_ss(y[i].d));
  }
  return sumf;
}

QF_AVX2 float DotQ4_1Avx2(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_1*>(act);
  const __m256i ones = _mm256_set1_epi16(1);
  float sumf = 0;
  for (int64_t i = 0; i < n / 32; ++i, w += sizeof(BlockQ4_1)) {
    const int32_t sumi = HsumI32(DotU8Scaled(Nibbles32(w + 4), LoadBytes(y[i].qs), ones));
    sumf = CombineQ4_1(sumf, sumi, H2F(w), _cvtsh_ss(y[i].d), H2F(w + 2), _cvtsh_ss(y[i].s));
  }
  return sumf;
}

QF_AVX2 float DotQ5_1Avx2(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_1*>(act);
  const __m256i ones = _mm256_set1_epi16(1);
  float sumf = 0;
  for (int64_t i = 0; i < n / 32; ++i, w += sizeof(BlockQ5_1)) {
    const __m256i q = _mm256_or_si256(Nibbles32(w + 8), HighBits32(w + 4));
    const int32_t sumi = HsumI32(DotU8Scaled(q, LoadBytes(y[i].qs), ones));
    sumf = CombineQ4_1(sumf, sumi, H2F(w), _cvtsh_ss(y[i].d), H2F(w + 2), _cvtsh_ss(y[i].s));
  }
  return sumf;
}

QF_AVX2 float DotIQ4_NLAvx2(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_0*>(act);
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues));
  const __m256i table = _mm256_broadcastsi128_si256(t);
  float sumf = 0;
  for (int64_t i = 0; i < n / 32; ++i, w += sizeof(BlockIQ4_NL)) {
    const __m256i v = _mm256_shuffle_epi8(table, Nibbles32(w + 2));
    const int32_t sumi = HsumI32(DotI8(v, LoadBytes(y[i].qs)));
    sumf = CombineQ8_0(sumf, sumi, _cvtsh_ss(y[i].d), H2F(w));
  }
  return sumf;
}

// ---------------------------------------------------------------- k-quants (256-element super-blocks)

// Scales for the two 16-element halves of a 32-byte vector: low 128-bit lane a, high lane b (int16).
QF_AVX2 inline __m256i Scales2(int a, int b) {
  return _mm256_setr_m128i(_mm_set1_epi16(static_cast<int16_t>(a)), _mm_set1_epi16(static_cast<int16_t>(b)));
}

QF_AVX2 float DotQ4_KAvx2(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_K*>(act);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i, w += sizeof(block_q4_K)) {
    uint8_t sc[8], m[8];
    UnpackScalesMinsK4(w + 4, sc, m);
    const uint8_t* qs = w + 16;
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q4 = LoadBytes(qs + 32 * c);
      const __m256i lo = _mm256_and_si256(q4, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
      acc = _mm256_add_epi32(acc, DotU8Scaled(lo, LoadBytes(y[i].qs + 64 * c), _mm256_set1_epi16(sc[2 * c])));
      acc = _mm256_add_epi32(acc, DotU8Scaled(hi, LoadBytes(y[i].qs + 64 * c + 32), _mm256_set1_epi16(sc[2 * c + 1])));
    }
    int32_t summs = 0;
    for (int j = 0; j < 8; ++j) summs += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    sumf = CombineK(sumf, HsumI32(acc), summs, H2F(w), H2F(w + 2), y[i].d);
  }
  return sumf;
}

QF_AVX2 float DotQ5_KAvx2(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_K*>(act);
  const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i, w += sizeof(block_q5_K)) {
    uint8_t sc[8], m[8];
    UnpackScalesMinsK4(w + 4, sc, m);
    const __m256i qh = LoadBytes(w + 16);
    const uint8_t* qs = w + 48;
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q4 = LoadBytes(qs + 32 * c);
      // Bit j of qh[l] is the 5th bit of sub-block j: shift it to bit 0 of its byte, then up to bit 4.
      const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4);
      const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(q4, m4), h0);
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4, 4), m4), h1);
      acc = _mm256_add_epi32(acc, DotU8Scaled(lo, LoadBytes(y[i].qs + 64 * c), _mm256_set1_epi16(sc[2 * c])));
      acc = _mm256_add_epi32(acc, DotU8Scaled(hi, LoadBytes(y[i].qs + 64 * c + 32), _mm256_set1_epi16(sc[2 * c + 1])));
    }
    int32_t summs = 0;
    for (int j = 0; j < 8; ++j) summs += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    sumf = CombineK(sumf, HsumI32(acc), summs, H2F(w), H2F(w + 2), y[i].d);
  }
  return sumf;
}

QF_AVX2 float DotQ6_KAvx2(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_K*>(act);
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), k32 = _mm256_set1_epi8(32);
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i, w += sizeof(block_q6_K)) {
    const uint8_t* ql = w;
    const uint8_t* qhp = w + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(w + 192);
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = LoadBytes(ql + 64 * h), l1 = LoadBytes(ql + 64 * h + 32), qh = LoadBytes(qhp + 32 * h);
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
      for (int k = 0; k < 4; ++k) {
        const __m256i yv = LoadBytes(y[i].qs + 128 * h + 32 * k);
        // (q - 32) * y in int16 pairs: |q * y pair| <= 2*63*127, |32 * y pair| <= 2*32*127, difference < 2^15.
        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], yv), _mm256_maddubs_epi16(k32, yv));
        const int j = 8 * h + 2 * k;  // sub-block of the low 16 elements
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, Scales2(sc[j], sc[j + 1])));
      }
    }
    sumf = CombineK(sumf, HsumI32(acc), 0, H2F(w + 208), 0.0f, y[i].d);
  }
  return sumf;
}

// ---------------------------------------------------------------- float weights

// y = sum w*x in float: 4 accumulators of 8 lanes (element c goes to lane c % 32), then a tree sum.
QF_AVX2 float DotF32Avx2(const uint8_t* w, const uint8_t* xb, int64_t n) {
  const float* x = reinterpret_cast<const float*>(xb);
  const float* wf = reinterpret_cast<const float*>(w);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t c = 0;
  for (; c + 32 <= n; c += 32)
    for (int k = 0; k < 4; ++k)
      acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(wf + c + 8 * k), _mm256_loadu_ps(x + c + 8 * k), acc[k]);
  float tail = 0;
  for (; c < n; ++c) tail += LoadF32(w + 4 * c) * x[c];
  return HsumF32(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))) + tail;
}

QF_AVX2 float DotF16Avx2(const uint8_t* w, const uint8_t* act, int64_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t c = 0;
  for (; c + 32 <= n; c += 32)
    for (int k = 0; k < 4; ++k) {
      const __m256 a = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * (c + 8 * k))));
      const __m256 b = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(act + 2 * (c + 8 * k))));
      acc[k] = _mm256_fmadd_ps(a, b, acc[k]);
    }
  float tail = 0;
  for (; c < n; ++c) tail += H2F(w + 2 * c) * H2F(act + 2 * c);
  return HsumF32(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))) + tail;
}

// ---------------------------------------------------------------- the table

using RowDot = float (*)(const uint8_t* w, const uint8_t* act, int64_t n);

template <ActFormat F>
QF_AVX2 void PrepareAvx2(const float* x, int64_t cols, PreparedActivation* act) {
  act->x = x;
  act->cols = cols;
  act->quantized.resize(ActBytes(F, cols));
  uint8_t* out = act->quantized.data();
  if constexpr (F == ActFormat::kQ8_0) QuantizeQ8_0Avx2(x, reinterpret_cast<ActQ8_0*>(out), cols);
  if constexpr (F == ActFormat::kQ8_1) QuantizeQ8_1Avx2(x, reinterpret_cast<ActQ8_1*>(out), cols);
  if constexpr (F == ActFormat::kQ8_K) QuantizeQ8_KAvx2(x, reinterpret_cast<ActQ8_K*>(out), cols);
  if constexpr (F == ActFormat::kF16) QuantizeF16Avx2(x, reinterpret_cast<uint16_t*>(out), cols);
}

template <RowDot Dot, bool kFloatAct>
QF_AVX2 void RowsAvx2(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0,
                      int64_t r1) {
  const uint8_t* a = kFloatAct ? reinterpret_cast<const uint8_t*>(act.x) : act.quantized.data();
  for (int64_t r = r0; r < r1; ++r) y[r - r0] = Dot(w + r * row_bytes, a, act.cols);
}

template <ActFormat F, RowDot Dot>
constexpr MatVecKernel Avx2() {
  return {"avx2", PrepareAvx2<F>, RowsAvx2<Dot, F == ActFormat::kF32>};
}

struct Entry {
  GgmlType type;
  MatVecKernel kernel;
};

const Entry kAvx2[] = {
    {GgmlType::F32, Avx2<ActFormat::kF32, DotF32Avx2>()},
    {GgmlType::F16, Avx2<ActFormat::kF16, DotF16Avx2>()},
    {GgmlType::Q4_0, Avx2<ActFormat::kQ8_0, DotQ4_0Avx2>()},
    {GgmlType::Q4_1, Avx2<ActFormat::kQ8_1, DotQ4_1Avx2>()},
    {GgmlType::Q5_0, Avx2<ActFormat::kQ8_0, DotQ5_0Avx2>()},
    {GgmlType::Q5_1, Avx2<ActFormat::kQ8_1, DotQ5_1Avx2>()},
    {GgmlType::Q8_0, Avx2<ActFormat::kQ8_0, DotQ8_0Avx2>()},
    {GgmlType::IQ4_NL, Avx2<ActFormat::kQ8_0, DotIQ4_NLAvx2>()},
    {GgmlType::Q4_K, Avx2<ActFormat::kQ8_K, DotQ4_KAvx2>()},
    {GgmlType::Q5_K, Avx2<ActFormat::kQ8_K, DotQ5_KAvx2>()},
    {GgmlType::Q6_K, Avx2<ActFormat::kQ8_K, DotQ6_KAvx2>()},
};

}  // namespace

const MatVecKernel* Avx2MatVecKernel(GgmlType type) {
  for (const auto& e : kAvx2)
    if (e.type == type) return &e.kernel;
  return nullptr;
}

void QuantizeActAvx2(ActFormat f, const float* x, uint8_t* out, int64_t n) {
  switch (f) {
    case ActFormat::kQ8_0: QuantizeQ8_0Avx2(x, reinterpret_cast<ActQ8_0*>(out), n); break;
    case ActFormat::kQ8_1: QuantizeQ8_1Avx2(x, reinterpret_cast<ActQ8_1*>(out), n); break;
    case ActFormat::kQ8_K: QuantizeQ8_KAvx2(x, reinterpret_cast<ActQ8_K*>(out), n); break;
    case ActFormat::kF16: QuantizeF16Avx2(x, reinterpret_cast<uint16_t*>(out), n); break;
    default: QuantizeAct(f, x, out, n); break;
  }
}

}  // namespace qforge
#else
namespace qforge {
const MatVecKernel* Avx2MatVecKernel(GgmlType) { return nullptr; }
void QuantizeActAvx2(ActFormat f, const float* x, uint8_t* out, int64_t n) { QuantizeAct(f, x, out, n); }
}  // namespace qforge
#endif

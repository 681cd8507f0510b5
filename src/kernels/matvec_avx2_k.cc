// AVX2 row dots for the 256-element super-block types (Q2_K..Q6_K, IQ4_XS). Per super-block the int32
// isum = sum_j scale_j * dot_j (and summs = sum_j min_j * bsums_j) is exact in any order, then CombineK does
// the float part exactly like the scalar spec (dot_scalar.cc): bit-exact.
#include "matvec_avx2_inl.h"

#if defined(__x86_64__)
#include <algorithm>
#include <vector>

#include "activation_quant.h"
#include "dot_scalar.h"
#include "qforge/quant/blocks.h"
#include "qforge/quant/k_blocks.h"

namespace qforge::avx2 {


// The 8 mins of ScalesMinsK4, each twice, as 16 int16 (one per bsum).
QF_AVX2 inline __m256i MinsPerBsum(uint64_t mins) {
  const __m128i m8 = _mm_cvtsi64_si128(static_cast<long long>(mins));
  return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
}
// sum_j m[j] * (bsums[2j] + bsums[2j+1]) (exact): the mins duplicated into int16 pairs against the bsums.
QF_AVX2 inline int32_t MinsTimesBsums(uint64_t mins, const int16_t bsums[16]) {
  return HsumI32(_mm256_madd_epi16(LoadBytes(bsums), MinsPerBsum(mins)));
}
// The 8 scales of ScalesMinsK4 as int16 words, the same 8 in both 128-bit lanes; ScaleOf picks scale j into
// every word with one in-lane byte shuffle (no round trip through a stack array).
QF_AVX2 inline __m256i ScaleWords(uint64_t scales) {
  return _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(scales))));
}
QF_AVX2 inline __m256i ScaleOf(__m256i words, int j) {
  return _mm256_shuffle_epi8(words, _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * j)));
}

QF_AVX2 float DotQ4_K(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_K*>(act);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i, w += sizeof(block_q4_K)) {
    uint64_t scales, mins;
    ScalesMinsK4(w + 4, &scales, &mins);
    const __m256i sw = ScaleWords(scales);
    const uint8_t* qs = w + 16;
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q4 = LoadBytes(qs + 32 * c);
      const __m256i lo = _mm256_and_si256(q4, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
      acc = _mm256_add_epi32(acc, DotU8Scaled(lo, LoadBytes(y[i].qs + 64 * c), ScaleOf(sw, 2 * c)));
      acc = _mm256_add_epi32(acc, DotU8Scaled(hi, LoadBytes(y[i].qs + 64 * c + 32), ScaleOf(sw, 2 * c + 1)));
    }
    const int32_t summs = MinsTimesBsums(mins, y[i].bsums);
    sumf = CombineK(sumf, HsumI32(acc), summs, H2F(w), H2F(w + 2), y[i].d);
  }
  return sumf;
}

QF_AVX2 float DotQ5_K(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_K*>(act);
  const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i, w += sizeof(block_q5_K)) {
    uint64_t scales, mins;
    ScalesMinsK4(w + 4, &scales, &mins);
    const __m256i sw = ScaleWords(scales);
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
      acc = _mm256_add_epi32(acc, DotU8Scaled(lo, LoadBytes(y[i].qs + 64 * c), ScaleOf(sw, 2 * c)));
      acc = _mm256_add_epi32(acc, DotU8Scaled(hi, LoadBytes(y[i].qs + 64 * c + 32), ScaleOf(sw, 2 * c + 1)));
    }
    const int32_t summs = MinsTimesBsums(mins, y[i].bsums);
    sumf = CombineK(sumf, HsumI32(acc), summs, H2F(w), H2F(w + 2), y[i].d);
  }
  return sumf;
}

// The 16 Q6_K scales as int16 words, and the vector with scale j in the low 128-bit lane and j + 1 in the
// high one (j even): the dword holding words j, j+1 is broadcast, then each lane keeps its word.
QF_AVX2 inline __m256i Q6Scales(const uint8_t* sc) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
}
QF_AVX2 inline __m256i ScalePair(__m256i words, int j) {
  const __m256i pair = _mm256_permutevar8x32_epi32(words, _mm256_set1_epi32(j / 2));
  return _mm256_shuffle_epi8(pair, _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,  //
                                                    2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3));
}

QF_AVX2 float DotQ6_K(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_K*>(act);
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i, w += sizeof(block_q6_K)) {
    const uint8_t* ql = w;
    const uint8_t* qhp = w + 128;
    const __m256i sw = Q6Scales(w + 192);
    // q is kept unsigned (0..63); the -32 offset is -32 * sum_j sc_j * bsums_j, one madd for the block.
    __m256i acc = _mm256_slli_epi32(_mm256_madd_epi16(LoadBytes(y[i].bsums), sw), 5);
    acc = _mm256_sub_epi32(_mm256_setzero_si256(), acc);
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
        const int j = 8 * h + 2 * k;  // sub-block of the low 16 elements
        // |q * y pair| <= 2 * 63 * 127 < 2^15.
        acc = _mm256_add_epi32(acc, DotU8Scaled(q[k], yv, ScalePair(sw, j)));
      }
    }
    sumf = CombineK(sumf, HsumI32(acc), 0, H2F(w + 208), 0.0f, y[i].d);
  }
  return sumf;
}

QF_AVX2 float DotQ2_K(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_K*>(act);
  const __m256i m2 = _mm256_set1_epi8(3);
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i, w += sizeof(block_q2_K)) {
    const uint8_t* sc = w;  // low nibble scale, high nibble min, per 16 elements
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q2 = LoadBytes(w + 16 + 32 * h);
      for (int k = 0; k < 4; ++k) {
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(q2, 2 * k), m2);  // element 128h + 32k + l
        const int j = 8 * h + 2 * k;
        const __m256i s = Scales2(sc[j] & 15, sc[j + 1] & 15);
        acc = _mm256_add_epi32(acc, DotU8Scaled(q, LoadBytes(y[i].qs + 128 * h + 32 * k), s));
      }
    }
    int32_t summs = 0;
    for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (sc[j] >> 4);
    sumf = CombineK(sumf, HsumI32(acc), summs, H2F(w + 80), H2F(w + 82), y[i].d);
  }
  return sumf;
}

QF_AVX2 float DotQ3_K(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_K*>(act);
  const __m256i m2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1), k4 = _mm256_set1_epi8(4);
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i, w += sizeof(block_q3_K)) {
    int8_t sc[16];
    UnpackScalesQ3_K(w + 96, sc);
    const __m256i hm = LoadBytes(w);
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q3 = LoadBytes(w + 32 + 32 * h);
      for (int k = 0; k < 4; ++k) {
        // value = (low 2 bits) + 4 * hbit - 4, hbit = bit (4h + k) of hmask[l]; as unsigned 0..7 minus 4.
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q3, 2 * k), m2);
        const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + k), one);
        const __m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2));
        const __m256i yv = LoadBytes(y[i].qs + 128 * h + 32 * k);
        // |pair sums| <= 2 * 7 * 127 and 2 * 4 * 127: no int16 overflow.
        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, yv), _mm256_maddubs_epi16(k4, yv));
        const int j = 8 * h + 2 * k;
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, Scales2(sc[j], sc[j + 1])));
      }
    }
    sumf = CombineK(sumf, HsumI32(acc), 0, H2F(w + 108), 0.0f, y[i].d);
  }
  return sumf;
}

QF_AVX2 float DotIQ4_XS(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const ActQ8_K*>(act);
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i, w += sizeof(BlockIQ4_XS)) {
    uint16_t sh;
    std::memcpy(&sh, w + 2, 2);
    __m256i acc = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((w[4 + ib / 2] >> (4 * (ib % 2))) & 15) | ((sh >> (2 * ib)) & 3) << 4;
      const __m256i v = _mm256_shuffle_epi8(table, Nibbles32(w + 8 + 16 * ib));
      const __m256i yv = LoadBytes(y[i].qs + 32 * ib);
      // |v| <= 127, |y| <= 127: pair sums <= 2 * 127 * 127 < 2^15.
      const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(yv, v));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(static_cast<int16_t>(ls - 32))));
    }
    sumf = CombineK(sumf, HsumI32(acc), 0, H2F(w), 0.0f, y[i].d);
  }
  return sumf;
}

// ---------------------------------------------------------------- batched (prefill) kernels

namespace {


// Drives a super-block op over rows [r0, r1) and groups of 8 activations: Op::Block(w, ya, &isum, &summs)
// fills the 8 lanes' exact integers for one super-block (the weights unpacked once for all 8).
template <class Op>
QF_AVX2 void RowsBatchK(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                        size_t ldy, int64_t r0, int64_t r1) {
  const int64_t nb = acts[0].cols / 256;
  std::vector<float> dy_buf(static_cast<size_t>(8 * nb) + 8);
  float* dy = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(dy_buf.data()) + 31) & ~uintptr_t{31});
  for (int t0 = 0; t0 < n; t0 += 8) {
    const int nt = std::min(8, n - t0);
    const ActQ8_K* ya[8];
    for (int j = 0; j < 8; ++j) ya[j] = reinterpret_cast<const ActQ8_K*>(acts[t0 + std::min(j, nt - 1)].quantized.data());
    for (int64_t i = 0; i < nb; ++i)
      for (int j = 0; j < 8; ++j) dy[8 * i + j] = ya[j][i].d;
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* wb = w + r * row_bytes;
      __m256 s = _mm256_setzero_ps();
      for (int64_t i = 0; i < nb; ++i, wb += Op::kBytes) {
        const ActQ8_K* yb[8];
        for (int j = 0; j < 8; ++j) yb[j] = ya[j] + i;
        __m256i isum, summs;
        Op::Block(wb, yb, &isum, &summs);
        s = CombineK8(s, isum, summs, _mm256_set1_ps(H2F(wb + Op::kDOffset)),
                      _mm256_set1_ps(Op::kHasMin ? H2F(wb + Op::kDOffset + 2) : 0.0f), _mm256_load_ps(dy + 8 * i));
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, s);
      for (int j = 0; j < nt; ++j) y[(t0 + j) * ldy + r] = lanes[j];
    }
  }
}

struct Q4_KBlock {
  static constexpr size_t kBytes = sizeof(block_q4_K);
  static constexpr size_t kDOffset = 0;  // d, then dmin
  static constexpr bool kHasMin = true;
  QF_AVX2 static void Block(const uint8_t* w, const ActQ8_K* const* y, __m256i* isum, __m256i* summs) {
    uint64_t scales, mins;
    ScalesMinsK4(w + 4, &scales, &mins);
    const __m256i sw = ScaleWords(scales);
    const uint8_t* qs = w + 16;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i acc[8];
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q4 = LoadBytes(qs + 32 * c);
      const __m256i lo = _mm256_and_si256(q4, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
      const __m256i slo = ScaleOf(sw, 2 * c), shi = ScaleOf(sw, 2 * c + 1);
      for (int j = 0; j < 8; ++j) {
        acc[j] = _mm256_add_epi32(acc[j], DotU8Scaled(lo, LoadBytes(y[j]->qs + 64 * c), slo));
        acc[j] = _mm256_add_epi32(acc[j], DotU8Scaled(hi, LoadBytes(y[j]->qs + 64 * c + 32), shi));
      }
    }
    *isum = Reduce8(acc);
    // summs = sum_j m_j * (bsums[2j] + bsums[2j+1]): the mins as int16 pairs against the 16 bsums.
    const __m256i m16 = MinsPerBsum(mins);
    __m256i sm[8];
    for (int j = 0; j < 8; ++j) sm[j] = _mm256_madd_epi16(LoadBytes(y[j]->bsums), m16);
    *summs = Reduce8(sm);
  }
};

struct Q6_KBlock {
  static constexpr size_t kBytes = sizeof(block_q6_K);
  static constexpr size_t kDOffset = 208;
  static constexpr bool kHasMin = false;
  QF_AVX2 static void Block(const uint8_t* w, const ActQ8_K* const* y, __m256i* isum, __m256i* summs) {
    const uint8_t* ql = w;
    const uint8_t* qhp = w + 128;
    const __m256i sc16 = Q6Scales(w + 192);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    __m256i acc[8];
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = LoadBytes(ql + 64 * h), l1 = LoadBytes(ql + 64 * h + 32), qh = LoadBytes(qhp + 32 * h);
      for (int k = 0; k < 4; ++k) {
        // The unsigned 6-bit q of 32 elements; the -32 offset is applied once below through the bsums.
        const __m256i lq = k == 0 ? _mm256_and_si256(l0, m4)
                           : k == 1 ? _mm256_and_si256(l1, m4)
                           : k == 2 ? _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4)
                                    : _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4);
        const __m256i hq = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m2), 4);
        const __m256i q = _mm256_or_si256(lq, hq);
        const int s = 8 * h + 2 * k;  // sub-block of the low 16 elements
        const __m256i scale = ScalePair(sc16, s);
        for (int j = 0; j < 8; ++j)
          acc[j] = _mm256_add_epi32(acc[j], DotU8Scaled(q, LoadBytes(y[j]->qs + 128 * h + 32 * k), scale));
      }
    }
    // sum_e sc_(e/16) * (q_e - 32) * y_e = the unsigned sum - 32 * sum_j sc_j * bsums_j.
    for (int j = 0; j < 8; ++j)
      acc[j] = _mm256_sub_epi32(acc[j], _mm256_slli_epi32(_mm256_madd_epi16(LoadBytes(y[j]->bsums), sc16), 5));
    *isum = Reduce8(acc);
    *summs = _mm256_setzero_si256();
  }
};

}  // namespace

QF_AVX2 void RowsBatchQ4_K(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                           size_t ldy, int64_t r0, int64_t r1) {
  RowsBatchK<Q4_KBlock>(w, row_bytes, acts, n, y, ldy, r0, r1);
}
QF_AVX2 void RowsBatchQ6_K(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                           size_t ldy, int64_t r0, int64_t r1) {
  RowsBatchK<Q6_KBlock>(w, row_bytes, acts, n, y, ldy, r0, r1);
}

}  // namespace qforge::avx2
#endif

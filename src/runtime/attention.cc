#include "attention.h"

#include <algorithm>
#include <cmath>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "exp_avx512_inl.h"
#include "qforge/core/cpu_features.h"
#include "qforge/core/fp16.h"

// GCC 12 reports its own _mm512_undefined_*() merge operands as uninitialized (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace qforge {
namespace {

// F16 <-> F32 for the scalar path: with F16C, 8 values per instruction; the results are the scalar conversions'
// (checked over every float bit pattern: identical except for signalling NaNs, which F16C quiets and which the
// KV cache never holds, since everything in it came out of the F32 -> F16 rounding).
#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) void HalfToFloatF16c(const uint16_t* h, float* f, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  for (; i < n; ++i) f[i] = F16ToF32(h[i]);
}
__attribute__((target("avx,f16c"))) void RoundToHalfF16c(float* v, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(v + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_ps(v + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) v[i] = F16ToF32(F32ToF16(v[i]));
}
#endif

void HalfToFloat(const uint16_t* h, float* f, int n) {
#if defined(__x86_64__)
  static const bool f16c = CpuHasF16c();
  if (f16c) return HalfToFloatF16c(h, f, n);
#endif
  F16ToF32Row(h, f, static_cast<size_t>(n));
}

// v[i] = v[i] rounded to the nearest F16 value (ties to even), kept as a float.
void RoundToHalf(float* v, int n) {
#if defined(__x86_64__)
  static const bool f16c = CpuHasF16c();
  if (f16c) return RoundToHalfF16c(v, n);
#endif
  for (int i = 0; i < n; ++i) v[i] = F16ToF32(F32ToF16(v[i]));
}

// a . b in a fixed order: 16 running sums (element i into sum i % 16), then a fixed pairwise reduction. One
// float chain per dot product was a latency-bound loop (a dependent add per element); 16 independent chains
// vectorise with any SIMD width, and the order, hence the result, is the same on every machine.
float Dot(const float* a, const float* b, int n) {
  float acc[16] = {};
  int i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  for (int j = 0; i < n; ++i, ++j) acc[j] += a[i] * b[i];
  for (int w = 8; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0];
}

#if defined(__x86_64__)
#define QF_ATTENTION_AVX512 __attribute__((target("avx512f,avx512vl,f16c,fma")))

QF_ATTENTION_AVX512 inline __mmask16 TailMask(int left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

// head_dim = 16 * kVecs: a key or value row is kVecs registers. Scores position by position (the row converted
// once, then a dot product per query head); the softmax 16 scores at a time; the weighted sum of the values
// kHeads query heads at a time, their kHeads * kVecs running sums held in registers across all positions.
template <int kVecs>
QF_ATTENTION_AVX512 void AttendAvx512(const KvHeadAttention& a, float* scratch) {
  constexpr int kHd = 16 * kVecs;
  constexpr int kHeads = std::max(1, 16 / kVecs);
  const int group = a.group, n = a.n_pos;
  float* q = scratch;                                  // group * kHd, rounded to F16
  float* scores = scratch + static_cast<size_t>(group) * kHd;  // group * n
  for (int i = 0; i < group * kHd; i += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(a.q + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm512_storeu_ps(q + i, _mm512_cvtph_ps(h));
  }
  for (int p = 0; p < n; ++p) {
    const uint16_t* kr = a.k + static_cast<size_t>(p) * a.stride;
    __m512 key[kVecs];
    for (int j = 0; j < kVecs; ++j) key[j] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kr + 16 * j)));
    for (int g = 0; g < group; ++g) {
      const float* qg = q + g * kHd;
      __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(qg), key[0]);
      for (int j = 1; j < kVecs; ++j) acc = _mm512_fmadd_ps(_mm512_loadu_ps(qg + 16 * j), key[j], acc);
      scores[static_cast<size_t>(g) * n + p] = _mm512_reduce_add_ps(acc) * a.scale;
    }
  }
  const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
  for (int g = 0; g < group; ++g) {
    float* s = scores + static_cast<size_t>(g) * n;
    __m512 mx = neg_inf;
    for (int i = 0; i < n; i += 16) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(neg_inf, TailMask(n - i), s + i));
    const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
      const __mmask16 m = TailMask(n - i);
      const __m512 e = _mm512_maskz_mov_ps(m, Exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + i), max)));
      _mm512_mask_storeu_ps(s + i, m, e);
      sum = _mm512_add_ps(sum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int i = 0; i < n; i += 16) {
      const __mmask16 m = TailMask(n - i);
      const __m256i h = _mm512_cvtps_ph(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + i), inv),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      _mm512_mask_storeu_ps(s + i, m, _mm512_cvtph_ps(h));
    }
  }
  for (int g0 = 0; g0 < group; g0 += kHeads) {
    const int heads = std::min(kHeads, group - g0);
    __m512 acc[kHeads][kVecs];
    for (int h = 0; h < kHeads; ++h)
      for (int j = 0; j < kVecs; ++j) acc[h][j] = _mm512_setzero_ps();
    for (int p = 0; p < n; ++p) {
      const uint16_t* vr = a.v + static_cast<size_t>(p) * a.stride;
      __m512 val[kVecs];
      for (int j = 0; j < kVecs; ++j) val[j] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(vr + 16 * j)));
      for (int h = 0; h < kHeads; ++h) {
        if (h >= heads) break;
        const __m512 w = _mm512_set1_ps(scores[static_cast<size_t>(g0 + h) * n + p]);
        for (int j = 0; j < kVecs; ++j) acc[h][j] = _mm512_fmadd_ps(w, val[j], acc[h][j]);
      }
    }
    for (int h = 0; h < heads; ++h)
      for (int j = 0; j < kVecs; ++j) _mm512_storeu_ps(a.out + static_cast<size_t>(g0 + h) * kHd + 16 * j, acc[h][j]);
  }
}

using AttendFn = void (*)(const KvHeadAttention&, float*);

// The AVX-512 instance for this head size, or null.
AttendFn Avx512For(int head_dim) {
  static const bool avx512 = CpuHasAvx512Vnni();
  if (!avx512 || head_dim % 16 != 0) return nullptr;
  switch (head_dim / 16) {
    case 1: return AttendAvx512<1>;
    case 2: return AttendAvx512<2>;
    case 3: return AttendAvx512<3>;
    case 4: return AttendAvx512<4>;
    case 5: return AttendAvx512<5>;
    case 6: return AttendAvx512<6>;
    case 7: return AttendAvx512<7>;
    case 8: return AttendAvx512<8>;
    default: return nullptr;
  }
}
#endif

}  // namespace

size_t AttentionScratchFloats(int group, int head_dim, int n_pos) {
  // The scalar path: rounded queries, one converted row, the scores. The AVX-512 path needs less.
  return static_cast<size_t>(group) * head_dim + head_dim + static_cast<size_t>(group) * n_pos;
}

void AttendKvHeadScalar(const KvHeadAttention& a, float* scratch) {
  const int hd = a.head_dim, group = a.group, n = a.n_pos;
  float* q = scratch;
  float* row = q + static_cast<size_t>(group) * hd;
  float* scores = row + hd;
  std::copy(a.q, a.q + static_cast<size_t>(group) * hd, q);
  RoundToHalf(q, group * hd);
  for (int p = 0; p < n; ++p) {
    HalfToFloat(a.k + static_cast<size_t>(p) * a.stride, row, hd);
    for (int g = 0; g < group; ++g) scores[static_cast<size_t>(g) * n + p] = Dot(q + static_cast<size_t>(g) * hd, row, hd) * a.scale;
  }
  for (int g = 0; g < group; ++g) {
    float* sc = scores + static_cast<size_t>(g) * n;
    float max = -INFINITY;
    for (int p = 0; p < n; ++p) max = std::max(max, sc[p]);
    double sum = 0;
    for (int p = 0; p < n; ++p) {
      sc[p] = std::exp(sc[p] - max);
      sum += sc[p];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int p = 0; p < n; ++p) sc[p] *= inv;
    RoundToHalf(sc, n);
  }
  std::fill(a.out, a.out + static_cast<size_t>(group) * hd, 0.0f);
  for (int p = 0; p < n; ++p) {
    HalfToFloat(a.v + static_cast<size_t>(p) * a.stride, row, hd);
    for (int g = 0; g < group; ++g) {
      const float w = scores[static_cast<size_t>(g) * n + p];
      float* out = a.out + static_cast<size_t>(g) * hd;
      for (int i = 0; i < hd; ++i) out[i] += w * row[i];
    }
  }
}

void AttendKvHead(const KvHeadAttention& a, float* scratch) {
#if defined(__x86_64__)
  if (const AttendFn f = Avx512For(a.head_dim)) return f(a, scratch);
#endif
  AttendKvHeadScalar(a, scratch);
}

}  // namespace qforge

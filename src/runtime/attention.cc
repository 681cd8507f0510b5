#include "attention.h"

#include <algorithm>
#include <cmath>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "simd_exp_inl.h"
#include "qforge/core/cpu_features.h"
#include "qforge/core/fp16.h"

// GCC 12 reports its own _mm512_undefined_*() merge operands as uninitialized (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace qforge {
namespace {

// F16 <-> F32 for the scalar path and the AVX2 path's rows: with F16C, 8 values per instruction; the results are
// the scalar conversions' (checked over every float bit pattern: identical except for signalling NaNs, which
// F16C quiets and which the KV cache never holds, since everything in it came out of the F32 -> F16 rounding).
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

// Positions ahead that the AVX-512 path prefetches each key and value row: the cache is cold after the weight
// streams of the matrix products. 1-thread Q4_0 decode after a 1024-token prompt: attention 339-365 -> 280-294
// ms of a run at 16 rows ahead (32 ahead: 313-371). Prefetches past the last row are harmless (they never fault).
constexpr int kAheadRows = 16;

// The 16 vectors' lane sums in one vector, by a tree of shuffles and adds (15 adds for 16 sums): lane m of the
// result is the sum of v[k] with m = 4 * (k % 4) + k / 4. Halves of pairs, then quarters of pairs, then pairs
// within 128-bit lanes twice.
QF_ATTENTION_AVX512 inline __m512 SumLanes16(const __m512* v) {
  __m512 a[8], b[4], c[2];
  for (int i = 0; i < 8; ++i)
    a[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44), _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; ++i)
    b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x88), _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; ++i)
    c[i] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * i], b[2 * i + 1], 0x44), _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], 0x88), _mm512_shuffle_ps(c[0], c[1], 0xDD));
}

// head_dim = 16 * kVecs: a key or value row is kVecs registers. Scores in blocks of 16 positions (the rest
// position by position: the row converted once, then a dot product per query head); the softmax 16 scores at a
// time; the weighted sum of the values kHeads query heads at a time, their kHeads * kVecs running sums held in
// registers across all positions.
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
  // Blocks of 16 positions: the block's key rows converted once into kbuf, then per query head 16 dot products
  // whose lane sums SumLanes16 reduces together (a horizontal sum per dot product cost twice the shuffles).
  float* kbuf = scores + static_cast<size_t>(group) * n;  // 16 * kHd
  const int n16 = n / 16 * 16;
  const __m512 scale = _mm512_set1_ps(a.scale);
  for (int p0 = 0; p0 < n16; p0 += 16) {
    for (int r = 0; r < 16; ++r) {
      const uint16_t* kr = a.k + static_cast<size_t>(p0 + r) * a.stride;
      for (int j = 0; j < kVecs; j += 2) _mm_prefetch(reinterpret_cast<const char*>(kr + kAheadRows * a.stride + 16 * j), _MM_HINT_T0);
      for (int j = 0; j < kVecs; ++j)
        _mm512_storeu_ps(kbuf + r * kHd + 16 * j, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kr + 16 * j))));
    }
    for (int g = 0; g < group; ++g) {
      __m512 qv[kVecs];
      for (int j = 0; j < kVecs; ++j) qv[j] = _mm512_loadu_ps(q + g * kHd + 16 * j);
      __m512 acc[16];
      for (int k = 0; k < 16; ++k) {
        const float* kr = kbuf + (4 * (k % 4) + k / 4) * kHd;  // the position SumLanes16 puts in lane k's place
        acc[k] = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kr));
        for (int j = 1; j < kVecs; ++j) acc[k] = _mm512_fmadd_ps(qv[j], _mm512_loadu_ps(kr + 16 * j), acc[k]);
      }
      _mm512_storeu_ps(scores + static_cast<size_t>(g) * n + p0, _mm512_mul_ps(SumLanes16(acc), scale));
    }
  }
  for (int p = n16; p < n; ++p) {
    const uint16_t* kr = a.k + static_cast<size_t>(p) * a.stride;
    for (int j = 0; j < kVecs; j += 2) _mm_prefetch(reinterpret_cast<const char*>(kr + kAheadRows * a.stride + 16 * j), _MM_HINT_T0);
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
      for (int j = 0; j < kVecs; j += 2) _mm_prefetch(reinterpret_cast<const char*>(vr + kAheadRows * a.stride + 16 * j), _MM_HINT_T0);
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

#define QF_ATTENTION_AVX2 __attribute__((target("avx2,fma,f16c")))

QF_ATTENTION_AVX2 inline float ReduceAdd8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// head_dim a multiple of 8. AVX2 has 16 registers, too few to hold a row and the group's sums for the larger
// heads, so each cached row is converted into an L1-resident buffer and the outputs are summed in place (L1 too).
QF_ATTENTION_AVX2 void AttendAvx2(const KvHeadAttention& a, float* scratch) {
  const int hd = a.head_dim, group = a.group, n = a.n_pos;
  float* q = scratch;
  float* row = q + static_cast<size_t>(group) * hd;  // one key row, then a block of value rows
  float* scores = row + 8 * static_cast<size_t>(hd);
  for (int i = 0; i < group * hd; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(a.q + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_ps(q + i, _mm256_cvtph_ps(h));
  }
  for (int p = 0; p < n; ++p) {
    HalfToFloatF16c(a.k + static_cast<size_t>(p) * a.stride, row, hd);
    for (int g = 0; g < group; ++g) {
      const float* qg = q + static_cast<size_t>(g) * hd;
      __m256 s0 = _mm256_mul_ps(_mm256_loadu_ps(qg), _mm256_loadu_ps(row)), s1 = _mm256_setzero_ps();
      int i = 8;
      for (; i + 16 <= hd; i += 16) {
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(qg + i), _mm256_loadu_ps(row + i), s1);
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(qg + i + 8), _mm256_loadu_ps(row + i + 8), s0);
      }
      if (i < hd) s1 = _mm256_fmadd_ps(_mm256_loadu_ps(qg + i), _mm256_loadu_ps(row + i), s1);
      scores[static_cast<size_t>(g) * n + p] = ReduceAdd8(_mm256_add_ps(s0, s1)) * a.scale;
    }
  }
  for (int g = 0; g < group; ++g) {
    float* s = scores + static_cast<size_t>(g) * n;
    const int n8 = n / 8 * 8;
    __m256 mx = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < n8; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + i));
    float max = -INFINITY;
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, mx);
    for (float v : lanes) max = std::max(max, v);
    for (int i = n8; i < n; ++i) max = std::max(max, s[i]);
    // The tail padded into a full vector: exp of the padding is computed and dropped.
    __m256 sum = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
      float tail[8] = {};
      const bool full = i + 8 <= n;
      if (!full) std::copy(s + i, s + n, tail);
      const __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(full ? s + i : tail), _mm256_set1_ps(max)));
      if (full) {
        _mm256_storeu_ps(s + i, e);
        sum = _mm256_add_ps(sum, e);
      } else {
        _mm256_storeu_ps(tail, e);
        std::copy(tail, tail + (n - i), s + i);
        std::fill(tail + (n - i), tail + 8, 0.0f);
        sum = _mm256_add_ps(sum, _mm256_loadu_ps(tail));
      }
    }
    const __m256 inv = _mm256_set1_ps(1.0f / ReduceAdd8(sum));
    for (int i = 0; i < n8; i += 8) {
      const __m128i h = _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(s + i), inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      _mm256_storeu_ps(s + i, _mm256_cvtph_ps(h));
    }
    for (int i = n8; i < n; ++i) s[i] = F16ToF32(F32ToF16(s[i] * _mm256_cvtss_f32(inv)));
  }
  // The values in blocks of kBlock positions: the block's rows converted once, then each head's sums for 64
  // columns at a time kept in registers across the block (summing in place in memory cost a load and a store
  // per multiply-add).
  constexpr int kBlock = 8;
  float* rows = row;
  std::fill(a.out, a.out + static_cast<size_t>(group) * hd, 0.0f);
  for (int p0 = 0; p0 < n; p0 += kBlock) {
    const int np = std::min(kBlock, n - p0);
    for (int b = 0; b < np; ++b) HalfToFloatF16c(a.v + static_cast<size_t>(p0 + b) * a.stride, rows + b * hd, hd);
    for (int g = 0; g < group; ++g) {
      const float* w = scores + static_cast<size_t>(g) * n + p0;
      float* out = a.out + static_cast<size_t>(g) * hd;
      for (int c = 0; c < hd; c += 64) {
        const int vecs = std::min(64, hd - c) / 8;
        __m256 acc[8];
        for (int j = 0; j < 8; ++j)
          if (j < vecs) acc[j] = _mm256_loadu_ps(out + c + 8 * j);
        for (int b = 0; b < np; ++b) {
          const __m256 wb = _mm256_set1_ps(w[b]);
          for (int j = 0; j < 8; ++j)
            if (j < vecs) acc[j] = _mm256_fmadd_ps(wb, _mm256_loadu_ps(rows + b * hd + c + 8 * j), acc[j]);
        }
        for (int j = 0; j < 8; ++j)
          if (j < vecs) _mm256_storeu_ps(out + c + 8 * j, acc[j]);
      }
    }
  }
}

AttendFn Avx512For(int head_dim) {
  if (head_dim % 16 != 0) return nullptr;
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
  // The queries rounded to F16, the scores, and up to 16 rows converted to F32 (the scalar path converts one row
  // at a time, the AVX2 path blocks of 8 value rows, the AVX-512 path blocks of 16 key rows).
  return static_cast<size_t>(group) * head_dim + 16 * static_cast<size_t>(head_dim) + static_cast<size_t>(group) * n_pos;
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

AttendFn AttentionPath(AttentionIsa isa, int head_dim) {
#if defined(__x86_64__)
  switch (isa) {
    case AttentionIsa::kAvx512: {
      static const bool avx512 = CpuHasAvx512Vnni();
      return avx512 ? Avx512For(head_dim) : nullptr;
    }
    case AttentionIsa::kAvx2: {
      static const bool avx2 = CpuHasAvx2Fma();
      return avx2 && head_dim % 8 == 0 ? AttendAvx2 : nullptr;
    }
  }
#endif
  (void)isa;
  (void)head_dim;
  return nullptr;
}

void AttendKvHead(const KvHeadAttention& a, float* scratch) {
  for (AttentionIsa isa : {AttentionIsa::kAvx512, AttentionIsa::kAvx2}) {
    if (const AttendFn f = AttentionPath(isa, a.head_dim)) return f(a, scratch);
  }
  AttendKvHeadScalar(a, scratch);
}

}  // namespace qforge

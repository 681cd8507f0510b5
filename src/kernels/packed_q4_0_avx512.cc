// AVX-512 VNNI kernels on q4_0x16 (packed_q4_0.h), bit-exact with its scalar spec. One zmm lane per row of a
// 16-row group: per block, four 64-byte loads give all 16 rows' nibbles; each 4-element group of the block is
// one vpdpbusd of the 16 rows' unsigned nibbles against that group's 4 activation bytes broadcast to every
// lane. The Q4_0 offset (q - 8) is folded into the start value -8 * sum(a) of the block, the same for every row.
// Then one conversion, one multiply (the rows' 16 scales by the activation's) and one FMA finish the block for
// 16 rows; the result vector is 16 rows' outputs, with no horizontal sum. The stored-layout kernel
// (matvec_avx512.cc) needs a conversion, a multiply and an FMA per row and block pair, plus a horizontal sum per
// row: measured ~4x more float work per weight, the limit of Q4_0 prefill.
#include "packed_q4_0.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "activation_quant.h"
#include "matvec_avx2.h"
#include "qforge/core/fp16.h"

// GCC 12 reports its own _mm512_undefined_*() merge operands as uninitialized (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#define QF_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace qforge {
namespace {

// What prepare() appends after the standard ActQ8_0 bytes, per block b: the 32 activation bytes (contiguous
// over all blocks, so a group's 4 bytes are one broadcast load), -8 * their sum, and the scale as a float.
struct ActView {
  const int8_t* qs;
  const int32_t* nsum8;
  const float* d;
};

size_t ExtraOffset(int64_t nb) { return (static_cast<size_t>(nb) * sizeof(ActQ8_0) + 3) & ~size_t{3}; }

ActView View(const PreparedActivation& act) {
  const int64_t nb = act.cols / 32;
  const uint8_t* extra = act.quantized.data() + ExtraOffset(nb);
  return {reinterpret_cast<const int8_t*>(extra), reinterpret_cast<const int32_t*>(extra + 32 * nb),
          reinterpret_cast<const float*>(extra + 36 * nb)};
}

QF_AVX512 void Prepare(const float* x, int64_t cols, PreparedActivation* act) {
  act->x = x;
  act->cols = cols;
  const int64_t nb = cols / 32;
  const size_t extra = ExtraOffset(nb);
  act->quantized.resize(extra + 40 * static_cast<size_t>(nb));
  uint8_t* base = act->quantized.data();
  QuantizeActAvx2(ActFormat::kQ8_0, x, base, cols);  // the standard bytes: same as the spec's
  int8_t* qs = reinterpret_cast<int8_t*>(base + extra);
  int32_t* nsum8 = reinterpret_cast<int32_t*>(base + extra + 32 * nb);
  float* d = reinterpret_cast<float*>(base + extra + 36 * nb);
  for (int64_t b = 0; b < nb; ++b) {
    ActQ8_0 blk;
    std::memcpy(&blk, base + b * sizeof(ActQ8_0), sizeof(blk));
    std::memcpy(qs + 32 * b, blk.qs, 32);
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) sum += blk.qs[j];
    nsum8[b] = -8 * sum;
    d[b] = F16ToF32(blk.d);
  }
}

QF_AVX512 inline __m512i Broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

#ifndef QF_AHEAD
#define QF_AHEAD 2048
#endif
constexpr int64_t kAhead = QF_AHEAD;
#ifndef QF_GROUPS
#define QF_GROUPS 4
#endif
constexpr int kDecodeGroups = QF_GROUPS;

// The 16 rows of one group against kActs activations: out[t] lane r = the spec's result for row r, act t.
template <int kActs>
QF_AVX512 void Tile(const uint8_t* group, int64_t nb, const ActView* acts, __m512* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc[kActs];
  for (int t = 0; t < kActs; ++t) acc[t] = _mm512_setzero_ps();
  const uint8_t* scales = group + 256 * nb;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* nib = group + 256 * b;
    __m512i lo[4], hi[4];  // lo[c]: elements 4c..4c+3 of every row, hi[c]: elements 16+4c..16+4c+3
    for (int c = 0; c < 4; ++c) {
      const __m512i v = _mm512_loadu_si512(nib + 64 * c);
      lo[c] = _mm512_and_si512(v, low4);
      hi[c] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
    for (int t = 0; t < kActs; ++t) {
      const int8_t* a = acts[t].qs + 32 * b;
      // Two independent chains (integer sums are exact in any order).
      __m512i s0 = _mm512_set1_epi32(acts[t].nsum8[b]), s1 = _mm512_setzero_si512();
      for (int c = 0; c < 4; ++c) {
        s0 = _mm512_dpbusd_epi32(s0, lo[c], Broadcast4(a + 4 * c));
        s1 = _mm512_dpbusd_epi32(s1, hi[c], Broadcast4(a + 16 + 4 * c));
      }
      const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(acts[t].d[b]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), d, acc[t]);
    }
  }
  for (int t = 0; t < kActs; ++t) out[t] = acc[t];
}

// Decode (one activation): kGroups groups at once, each its own stream of weights. One stream per thread read
// DRAM at ~16 GB/s in the streaming micro-benchmark (bench/matvec_bench.cc), against ~25 GB/s for the stored-layout
// kernel's 8 row streams: several streams keep more DRAM pages and prefetchers busy.
template <int kGroups>
QF_AVX512 void DecodeGroups(const uint8_t* first, size_t stride, int64_t nb, const ActView& act, __m512* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc[kGroups];
  for (int g = 0; g < kGroups; ++g) acc[g] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* a = act.qs + 32 * b;
    const __m512 da = _mm512_set1_ps(act.d[b]);
    const __m512i start = _mm512_set1_epi32(act.nsum8[b]);
    for (int g = 0; g < kGroups; ++g) {
      const uint8_t* group = first + g * stride;
      const uint8_t* nib = group + 256 * b;
      const uint8_t* scales = group + 256 * nb + 32 * b;
      for (int c = 0; c < 4; ++c) _mm_prefetch(reinterpret_cast<const char*>(nib + kAhead + 64 * c), _MM_HINT_T0);
      if (b % 2 == 0) _mm_prefetch(reinterpret_cast<const char*>(scales + kAhead / 8), _MM_HINT_T0);
      __m512i s0 = start, s1 = _mm512_setzero_si512();
      for (int c = 0; c < 4; ++c) {
        const __m512i v = _mm512_loadu_si512(nib + 64 * c);
        s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(v, low4), Broadcast4(a + 4 * c));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4), Broadcast4(a + 16 + 4 * c));
      }
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales)));
      acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), _mm512_mul_ps(dw, da), acc[g]);
    }
  }
  for (int g = 0; g < kGroups; ++g) out[g] = acc[g];
}

// Writes the rows of group g that fall in [r0, r1) from v to y[r - r0] (a whole group: one store).
QF_AVX512 inline void StoreGroup(__m512 v, int64_t g, int64_t r0, int64_t r1, float* y) {
  const int64_t first = g * kQ4_0x16Rows;
  if (first >= r0 && first + kQ4_0x16Rows <= r1) {
    _mm512_storeu_ps(y + (first - r0), v);
    return;
  }
  alignas(64) float tmp[kQ4_0x16Rows];
  _mm512_store_ps(tmp, v);
  for (int64_t r = std::max(r0, first); r < std::min(r1, first + kQ4_0x16Rows); ++r) y[r - r0] = tmp[r - first];
}

const uint8_t* Group(const uint8_t* w, size_t row_bytes, int64_t g) {
  return w + static_cast<size_t>(g) * kQ4_0x16Rows * row_bytes;
}

QF_AVX512 void Rows(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0,
                    int64_t r1) {
  if (r0 >= r1) return;
  const int64_t nb = act.cols / 32;
  const ActView view = View(act);
  const size_t stride = kQ4_0x16Rows * row_bytes;
  const int64_t g1 = (r1 + kQ4_0x16Rows - 1) / kQ4_0x16Rows;
  int64_t g = r0 / kQ4_0x16Rows;
  __m512 v[kDecodeGroups];
  for (; g + kDecodeGroups <= g1; g += kDecodeGroups) {
    DecodeGroups<kDecodeGroups>(Group(w, row_bytes, g), stride, nb, view, v);
    for (int k = 0; k < kDecodeGroups; ++k) StoreGroup(v[k], g + k, r0, r1, y);
  }
  for (; g < g1; ++g) {
    DecodeGroups<1>(Group(w, row_bytes, g), stride, nb, view, v);
    StoreGroup(v[0], g, r0, r1, y);
  }
}

// Prefill: each group's weights (16 rows) are unpacked once per tile of up to 8 activations.
QF_AVX512 void RowsBatch(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                         size_t ldy, int64_t r0, int64_t r1) {
  if (r0 >= r1 || n <= 0) return;
  const int64_t nb = acts[0].cols / 32;
  ActView views[8];
  __m512 out[8];
  for (int64_t g = r0 / kQ4_0x16Rows; g * kQ4_0x16Rows < r1; ++g) {
    const uint8_t* group = Group(w, row_bytes, g);
    for (int t0 = 0; t0 < n;) {
      const int left = n - t0;
      const int k = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
      for (int t = 0; t < k; ++t) views[t] = View(acts[t0 + t]);
      switch (k) {
        case 8: Tile<8>(group, nb, views, out); break;
        case 4: Tile<4>(group, nb, views, out); break;
        case 2: Tile<2>(group, nb, views, out); break;
        default: Tile<1>(group, nb, views, out); break;
      }
      for (int t = 0; t < k; ++t) StoreGroup(out[t], g, r0, r1, y + static_cast<size_t>(t0 + t) * ldy + r0);
      t0 += k;
    }
  }
}

constexpr MatVecKernel kAvx512Q4_0x16 = {"avx512", Prepare, Rows, RowsBatch};

}  // namespace

const MatVecKernel* Avx512Q4_0x16Kernel() { return &kAvx512Q4_0x16; }

}  // namespace qforge
#else
namespace qforge {
const MatVecKernel* Avx512Q4_0x16Kernel() { return nullptr; }
}  // namespace qforge
#endif

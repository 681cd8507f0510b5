// AVX-512 VNNI kernels on q4_kx16 (packed_k16.h), bit-exact with the Q4_K spec. One zmm lane per row of a
// 16-row group: each 64-byte chunk is 4 qs bytes of every row, whose low nibbles belong to one sub-block and
// high nibbles to the next, so each is one vpdpbusd against 4 activation bytes broadcast to every lane. A
// sub-block's 16 integer dots are scaled by the rows' 6-bit scales (vpmulld), the mins term is 4 vpdpwssd of
// the rows' int16 min pairs against the activation's paired bsums, and CombineK runs once per super-block for
// 16 rows: no horizontal sums and no per-row shuffles of scales (the stored-layout kernel, matvec_avx512_k.cc,
// spends most of its work there).
#include "packed_k16.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "activation_quant.h"
#include "matvec_avx2.h"
#include "packed_avx512_inl.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#define QF_AVX512 QF_PACKED_AVX512

namespace qforge {
namespace {

using packed::Broadcast4;
using packed::kAhead;
using packed::kDecodeGroups;
using packed::StoreGroup;
static_assert(kK16Rows == packed::kGroupRows);

// After the standard ActQ8_K bytes, per super-block: 4 int32, each the int16 pair (bsums[4p] + bsums[4p+1],
// bsums[4p+2] + bsums[4p+3]) that vpdpwssd multiplies with a row's (m[2p], m[2p+1]) (|sum| <= 32 * 128).
size_t ExtraOffset(int64_t nsb) { return static_cast<size_t>(nsb) * sizeof(ActQ8_K); }

struct ActView {
  const ActQ8_K* y;
  const int32_t* bpairs;
};

ActView View(const PreparedActivation& act) {
  const int64_t nsb = act.cols / 256;
  return {reinterpret_cast<const ActQ8_K*>(act.quantized.data()),
          reinterpret_cast<const int32_t*>(act.quantized.data() + ExtraOffset(nsb))};
}

QF_AVX512 void Prepare(const float* x, int64_t cols, PreparedActivation* act) {
  act->x = x;
  act->cols = cols;
  const int64_t nsb = cols / 256;
  act->quantized.resize(ExtraOffset(nsb) + 16 * static_cast<size_t>(nsb));
  uint8_t* base = act->quantized.data();
  QuantizeActAvx2(ActFormat::kQ8_K, x, base, cols);  // the standard bytes: same as the spec's
  for (int64_t i = 0; i < nsb; ++i) {
    ActQ8_K y;
    std::memcpy(&y, base + i * sizeof(ActQ8_K), sizeof(y));
    for (int p = 0; p < 4; ++p) {
      const auto lo = static_cast<uint16_t>(static_cast<int16_t>(y.bsums[4 * p] + y.bsums[4 * p + 1]));
      const auto hi = static_cast<uint16_t>(static_cast<int16_t>(y.bsums[4 * p + 2] + y.bsums[4 * p + 3]));
      const uint32_t pair = lo | static_cast<uint32_t>(hi) << 16;
      std::memcpy(base + ExtraOffset(nsb) + 16 * i + 4 * p, &pair, 4);
    }
  }
}

// Opaque to the optimizer: keeps each product rounded on its own (no FMA contraction), as Keep() does.
QF_AVX512 inline __m512 KeepV(__m512 v) {
  __asm__("" : "+v"(v));
  return v;
}

// CombineK for 16 rows: s + (Keep(Keep(dy * d) * isum) - Keep(Keep(dy * dmin) * summs)).
QF_AVX512 inline __m512 Combine(__m512 s, __m512i isum, __m512i summs, const uint8_t* sb, float dy) {
  const __m512 vy = _mm512_set1_ps(dy);
  const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 2048)));
  const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 2080)));
  const __m512 dall = KeepV(_mm512_mul_ps(vy, d)), dm = KeepV(_mm512_mul_ps(vy, dmin));
  const __m512 a = KeepV(_mm512_mul_ps(dall, _mm512_cvtepi32_ps(isum)));
  const __m512 b = KeepV(_mm512_mul_ps(dm, _mm512_cvtepi32_ps(summs)));
  return _mm512_add_ps(s, _mm512_sub_ps(a, b));
}

QF_AVX512 inline __m512i Scale(const uint8_t* sb, int s) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sb + 2112 + 16 * s)));
}

// summs for 16 rows: 4 vpdpwssd of the rows' (m[2p], m[2p+1]) against the activation's paired bsums.
QF_AVX512 inline __m512i Summs(const uint8_t* sb, const int32_t* bpairs) {
  __m512i summs = _mm512_setzero_si512();
  for (int p = 0; p < 4; ++p)
    summs = _mm512_dpwssd_epi32(
        summs, _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 2240 + 32 * p))),
        _mm512_set1_epi32(bpairs[p]));
  return summs;
}

// The 16 rows of one group against kActs activations (prefill): each 64-element pair of sub-blocks is unpacked
// once for the kActs activations.
template <int kActs>
QF_AVX512 void Tile(const uint8_t* group, int64_t nsb, const ActView* acts, __m512* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc[kActs];
  for (int t = 0; t < kActs; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nsb; ++i) {
    const uint8_t* sb = group + i * kK16SuperBytes;
    __m512i isum[kActs];
    for (int t = 0; t < kActs; ++t) isum[t] = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      __m512i lo[8], hi[8];
      for (int c = 0; c < 8; ++c) {
        const __m512i v = _mm512_loadu_si512(sb + 512 * j + 64 * c);
        lo[c] = _mm512_and_si512(v, low4);
        hi[c] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      }
      const __m512i sc_lo = Scale(sb, 2 * j), sc_hi = Scale(sb, 2 * j + 1);
      for (int t = 0; t < kActs; ++t) {
        const int8_t* a = acts[t].y[i].qs + 64 * j;
        __m512i dl = _mm512_setzero_si512(), dh = _mm512_setzero_si512();
        for (int c = 0; c < 8; ++c) {
          dl = _mm512_dpbusd_epi32(dl, lo[c], Broadcast4(a + 4 * c));
          dh = _mm512_dpbusd_epi32(dh, hi[c], Broadcast4(a + 32 + 4 * c));
        }
        isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(dl, sc_lo), _mm512_mullo_epi32(dh, sc_hi)));
      }
    }
    for (int t = 0; t < kActs; ++t)
      acc[t] = Combine(acc[t], isum[t], Summs(sb, acts[t].bpairs + 4 * i), sb, acts[t].y[i].d);
  }
  for (int t = 0; t < kActs; ++t) out[t] = acc[t];
}

// Decode: several groups at once, each its own stream (packed_avx512_inl.h).
template <int kGroups>
QF_AVX512 void DecodeGroups(const uint8_t* first, size_t stride, int64_t nsb, const ActView& act, __m512* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc[kGroups];
  for (int g = 0; g < kGroups; ++g) acc[g] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nsb; ++i) {
    const ActQ8_K& y = act.y[i];
    for (int g = 0; g < kGroups; ++g) {
      const uint8_t* sb = first + g * stride + i * kK16SuperBytes;
      for (size_t o = 0; o < kK16SuperBytes; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(sb + kAhead + o), _MM_HINT_T0);
      __m512i isum = _mm512_setzero_si512();
      for (int j = 0; j < 4; ++j) {
        const int8_t* a = y.qs + 64 * j;
        __m512i dl = _mm512_setzero_si512(), dh = _mm512_setzero_si512();
        for (int c = 0; c < 8; ++c) {
          const __m512i v = _mm512_loadu_si512(sb + 512 * j + 64 * c);
          dl = _mm512_dpbusd_epi32(dl, _mm512_and_si512(v, low4), Broadcast4(a + 4 * c));
          dh = _mm512_dpbusd_epi32(dh, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4), Broadcast4(a + 32 + 4 * c));
        }
        isum = _mm512_add_epi32(isum, _mm512_add_epi32(_mm512_mullo_epi32(dl, Scale(sb, 2 * j)),
                                                       _mm512_mullo_epi32(dh, Scale(sb, 2 * j + 1))));
      }
      acc[g] = Combine(acc[g], isum, Summs(sb, act.bpairs + 4 * i), sb, y.d);
    }
  }
  for (int g = 0; g < kGroups; ++g) out[g] = acc[g];
}

QF_AVX512 void Rows(const uint8_t* w, size_t /*row_bytes*/, const PreparedActivation& act, float* y, int64_t r0,
                    int64_t r1) {
  if (r0 >= r1) return;
  const int64_t nsb = act.cols / 256;
  const ActView view = View(act);
  const size_t stride = static_cast<size_t>(nsb) * kK16SuperBytes;
  const int64_t g1 = (r1 + kK16Rows - 1) / kK16Rows;
  int64_t g = r0 / kK16Rows;
  __m512 v[kDecodeGroups];
  for (; g + kDecodeGroups <= g1; g += kDecodeGroups) {
    DecodeGroups<kDecodeGroups>(w + g * stride, stride, nsb, view, v);
    for (int k = 0; k < kDecodeGroups; ++k) StoreGroup(v[k], g + k, r0, r1, y);
  }
  for (; g < g1; ++g) {
    DecodeGroups<1>(w + g * stride, stride, nsb, view, v);
    StoreGroup(v[0], g, r0, r1, y);
  }
}

QF_AVX512 void RowsBatch(const uint8_t* w, size_t /*row_bytes*/, const PreparedActivation* acts, int n, float* y,
                         size_t ldy, int64_t r0, int64_t r1) {
  if (r0 >= r1 || n <= 0) return;
  const int64_t nsb = acts[0].cols / 256;
  const size_t stride = static_cast<size_t>(nsb) * kK16SuperBytes;
  ActView views[4];
  __m512 out[4];
  for (int64_t g = r0 / kK16Rows; g * kK16Rows < r1; ++g) {
    for (int t0 = 0; t0 < n;) {
      const int left = n - t0;
      const int k = left >= 4 ? 4 : left >= 2 ? 2 : 1;
      for (int t = 0; t < k; ++t) views[t] = View(acts[t0 + t]);
      switch (k) {
        case 4: Tile<4>(w + g * stride, nsb, views, out); break;
        case 2: Tile<2>(w + g * stride, nsb, views, out); break;
        default: Tile<1>(w + g * stride, nsb, views, out); break;
      }
      for (int t = 0; t < k; ++t) StoreGroup(out[t], g, r0, r1, y + static_cast<size_t>(t0 + t) * ldy + r0);
      t0 += k;
    }
  }
}

constexpr MatVecKernel kAvx512 = {"avx512", Prepare, Rows, RowsBatch};

}  // namespace

const MatVecKernel* Avx512Q4_Kx16Kernel() { return &kAvx512; }

}  // namespace qforge
#else
namespace qforge {
const MatVecKernel* Avx512Q4_Kx16Kernel() { return nullptr; }
}  // namespace qforge
#endif

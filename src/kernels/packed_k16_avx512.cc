// AVX-512 VNNI kernels on q4_kx16 and q6_kx16 (packed_k16.h), bit-exact with the Q4_K and Q6_K specs. One zmm
// lane per row of a 16-row group: each 64-byte chunk is 4 weight bytes of every row, so 4 elements of a
// sub-block are one vpdpbusd against 4 activation bytes broadcast to every lane. A sub-block's 16 integer dots
// are scaled by the rows' scales (vpmulld), and CombineK runs once per super-block for 16 rows: no horizontal
// sums and no per-row shuffles of scales (the stored-layout kernels, matvec_avx512_k.cc, spend most of their
// work there).
//   Q4_K: a chunk's low nibbles belong to one sub-block and its high nibbles to the next; the mins term is 4
//   vpdpwssd of the rows' int16 min pairs against the activation's paired bsums.
//   Q6_K: a qh chunk and two ql chunks make 4 chunks of 6-bit weights (shift, mask, and one vpternlogd to
//   merge the two high bits), one each for sub-blocks s, s + 2, s + 4, s + 6; the -32 offset is folded into
//   each sub-block's start value, -32 * bsums[s].
#include "packed_k16.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "activation_quant.h"
#include "matvec_avx2.h"
#include "packed_avx512_inl.h"
#include "packed_k16_inl.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#define QF_AVX512 QF_PACKED_AVX512
// Loops over the sub-blocks of a super-block must be unrolled for their accumulators to stay in registers
// (GCC 12 left the Q6_K loops rolled and spilled their accumulators: the Q6_K streaming micro-benchmark read
// 14 GB/s, 21 once unrolled).
#define QF_UNROLL _Pragma("GCC unroll 16")

namespace qforge {
namespace {

using packed::Broadcast4;
using packed::kAhead;

// Decode reads 4 groups at a time, each its own stream (x16: 4 as well, packed_avx512_inl.h). On session 9's
// Xeon, from DRAM, 1 thread (bench/matvec_bench.cc matvec_stream, GB/s), 2 groups had read more than 4 (q4_kx16
// 13.5-13.8 vs 12.8-13.0, q6_kx16 11.7-11.8 vs 11.0-11.2; 8 slower still) while each group's super-block was read
// whole before the next group's. Session 10 made the streams advance one line at a time in turn, and q6_kx16's
// layout store its chunks in the order they are read; then 4 groups read more than 2: q4_kx16 16.5-17.3 vs
// 15.9-16.1 (14.9-15.3 before), q6_kx16 15.9 vs 14.4-14.6 (13.1 before).
constexpr int kK16DecodeGroups = 4;
static_assert(kK16Rows == packed::kGroupRows);

using namespace k16;  // NOLINT(google-build-using-namespace): the shared float steps
using ActView = K16ActView;

ActView MakeActView(const PreparedActivation& act) { return MakeK16ActView(act); }

// Both layouts' prepare (Q6_K ignores the bsum pairs).
QF_AVX512 void Prepare(const float* x, int64_t cols, PreparedActivation* act) {
  act->x = x;
  act->cols = cols;
  act->serial = NextActivationSerial();
  const int64_t nsb = cols / 256;
  act->quantized.resize(K16ActExtraOffset(nsb) + 16 * static_cast<size_t>(nsb));
  uint8_t* base = act->quantized.data();
  QuantizeActAvx2(ActFormat::kQ8_K, x, base, cols);  // the standard bytes: same as the spec's
  for (int64_t i = 0; i < nsb; ++i) {
    ActQ8_K y;
    std::memcpy(&y, base + i * sizeof(ActQ8_K), sizeof(y));
    for (int p = 0; p < 4; ++p) {
      const auto lo = static_cast<uint16_t>(static_cast<int16_t>(y.bsums[4 * p] + y.bsums[4 * p + 1]));
      const auto hi = static_cast<uint16_t>(static_cast<int16_t>(y.bsums[4 * p + 2] + y.bsums[4 * p + 3]));
      const uint32_t pair = lo | static_cast<uint32_t>(hi) << 16;
      std::memcpy(base + K16ActExtraOffset(nsb) + 16 * i + 4 * p, &pair, 4);
    }
  }
}

// ---- q4_kx16 ----

struct Q4_KOp {
  using View = ActView;
  static constexpr int kMaxActs = 4;
  static constexpr int kDecodeGroups = kK16DecodeGroups;
  static View MakeView(const PreparedActivation& act) { return MakeActView(act); }
  static size_t GroupBytes(size_t /*row_bytes*/, int64_t cols) { return (cols / 256) * kQ4_K16SuperBytes; }

  // The 16 rows of one group against kActs activations (prefill): each 64-element pair of sub-blocks is
  // unpacked once for the kActs activations.
  template <int kActs>
  QF_AVX512 static void Tile(const uint8_t* group, int64_t cols, const View* acts, __m512* out) {
    const int64_t nsb = cols / 256;
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    __m512 acc[kActs];
    for (int t = 0; t < kActs; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; ++i) {
      const uint8_t* sb = group + i * kQ4_K16SuperBytes;
      __m512i isum[kActs];
      for (int t = 0; t < kActs; ++t) isum[t] = _mm512_setzero_si512();
      for (int j = 0; j < 4; ++j) {
        __m512i lo[8], hi[8];
        for (int c = 0; c < 8; ++c) {
          const __m512i v = _mm512_loadu_si512(sb + 512 * j + 64 * c);
          lo[c] = _mm512_and_si512(v, low4);
          hi[c] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        }
        const __m512i sc_lo = ScaleQ4_K(sb, 2 * j), sc_hi = ScaleQ4_K(sb, 2 * j + 1);
        for (int t = 0; t < kActs; ++t) {
          const int8_t* a = acts[t].y[i].qs + 64 * j;
          __m512i dl = _mm512_setzero_si512(), dh = _mm512_setzero_si512();
          for (int c = 0; c < 8; ++c) {
            dl = _mm512_dpbusd_epi32(dl, lo[c], Broadcast4(a + 4 * c));
            dh = _mm512_dpbusd_epi32(dh, hi[c], Broadcast4(a + 32 + 4 * c));
          }
          isum[t] = _mm512_add_epi32(isum[t],
                                     _mm512_add_epi32(_mm512_mullo_epi32(dl, sc_lo), _mm512_mullo_epi32(dh, sc_hi)));
        }
      }
      for (int t = 0; t < kActs; ++t) acc[t] = CombineQ4_K(acc[t], isum[t], sb, acts[t].bpairs + 4 * i, acts[t].y[i].d);
    }
    for (int t = 0; t < kActs; ++t) out[t] = acc[t];
  }

  // Decode: several groups at once, each its own stream (packed_avx512_inl.h), advancing one 64-byte line at
  // a time in turn as the x16 decode does (packed_x16_avx512.cc), each line with its own prefetch kAhead on.
  template <int kGroups>
  QF_AVX512 static void Decode(const uint8_t* first, size_t stride, int64_t cols, const View& act, __m512* out) {
    constexpr int kTailLines = (kQ4_K16SuperBytes - 2048) / 64;
    static_assert(kTailLines <= 8 && (kQ4_K16SuperBytes - 2048) % 64 == 0);
    const int64_t nsb = cols / 256;
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    __m512 acc[kGroups];
    for (int g = 0; g < kGroups; ++g) acc[g] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; ++i) {
      const ActQ8_K& y = act.y[i];
      const uint8_t* sb[kGroups];
      __m512i isum[kGroups];
      for (int g = 0; g < kGroups; ++g) {
        sb[g] = first + g * stride + i * kQ4_K16SuperBytes;
        isum[g] = _mm512_setzero_si512();
      }
      for (int j = 0; j < 4; ++j) {
        const int8_t* a = y.qs + 64 * j;
        __m512i dl[kGroups], dh[kGroups];
        for (int g = 0; g < kGroups; ++g) dl[g] = dh[g] = _mm512_setzero_si512();
        for (int c = 0; c < 8; ++c) {
          for (int g = 0; g < kGroups; ++g) {
            const uint8_t* line = sb[g] + 512 * j + 64 * c;
            _mm_prefetch(reinterpret_cast<const char*>(line + kAhead), _MM_HINT_T0);
            // The last step also prefetches the super-block's 5 lines of scales, mins and d.
            if (j == 3 && c < kTailLines) _mm_prefetch(reinterpret_cast<const char*>(line + 512 + kAhead), _MM_HINT_T0);
            const __m512i v = _mm512_loadu_si512(line);
            dl[g] = _mm512_dpbusd_epi32(dl[g], _mm512_and_si512(v, low4), Broadcast4(a + 4 * c));
            dh[g] = _mm512_dpbusd_epi32(dh[g], _mm512_and_si512(_mm512_srli_epi16(v, 4), low4),
                                        Broadcast4(a + 32 + 4 * c));
          }
        }
        for (int g = 0; g < kGroups; ++g)
          isum[g] = _mm512_add_epi32(isum[g], _mm512_add_epi32(_mm512_mullo_epi32(dl[g], ScaleQ4_K(sb[g], 2 * j)),
                                                               _mm512_mullo_epi32(dh[g], ScaleQ4_K(sb[g], 2 * j + 1))));
      }
      for (int g = 0; g < kGroups; ++g) acc[g] = CombineQ4_K(acc[g], isum[g], sb[g], act.bpairs + 4 * i, y.d);
    }
    for (int g = 0; g < kGroups; ++g) out[g] = acc[g];
  }
};

// ---- q6_kx16 ----

struct Q6_KOp {
  using View = ActView;
  static constexpr int kMaxActs = 4;
  static constexpr int kDecodeGroups = kK16DecodeGroups;
  static View MakeView(const PreparedActivation& act) { return MakeActView(act); }
  static size_t GroupBytes(size_t row_bytes, int64_t /*cols*/) { return kK16Rows * row_bytes; }

  // Prefill: the 4 chunks of one sub-block are unpacked once for the kActs activations.
  template <int kActs>
  QF_AVX512 static void Tile(const uint8_t* group, int64_t cols, const View* acts, __m512* out) {
    const int64_t nsb = cols / 256;
    __m512 acc[kActs];
    for (int t = 0; t < kActs; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; ++i) {
      const uint8_t* sb = group + i * kQ6_K16SuperBytes;
      __m512i isum[kActs];
      for (int t = 0; t < kActs; ++t) isum[t] = _mm512_setzero_si512();
      // Per (h, quarter of c): 4 chunks c of each of the 4 sub-blocks 8h + 2m + c / 4, 16 registers.
      QF_UNROLL
      for (int h = 0; h < 2; ++h)
        QF_UNROLL
        for (int half = 0; half < 2; ++half) {
          __m512i q[4][4];  // [c - 4 * half][m]
          QF_UNROLL
          for (int c = 0; c < 4; ++c) UnpackQ6_K(sb, h, 4 * half + c, q[c]);
          QF_UNROLL
          for (int m = 0; m < 4; ++m) {
            const int s = 8 * h + 2 * m + half;
            const __m512i scale = ScaleQ6_K(sb, s);
            for (int t = 0; t < kActs; ++t) {
              const ActQ8_K& y = acts[t].y[i];
              const int8_t* a = y.qs + 16 * s;
              __m512i d0 = StartQ6_K(y, s), d1 = _mm512_setzero_si512();
              d0 = _mm512_dpbusd_epi32(d0, q[0][m], Broadcast4(a));
              d1 = _mm512_dpbusd_epi32(d1, q[1][m], Broadcast4(a + 4));
              d0 = _mm512_dpbusd_epi32(d0, q[2][m], Broadcast4(a + 8));
              d1 = _mm512_dpbusd_epi32(d1, q[3][m], Broadcast4(a + 12));
              isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(_mm512_add_epi32(d0, d1), scale));
            }
          }
        }
      for (int t = 0; t < kActs; ++t) acc[t] = CombineQ6_K(acc[t], isum[t], sb, acts[t].y[i].d);
    }
    for (int t = 0; t < kActs; ++t) out[t] = acc[t];
  }

  // Decode: per super-block, step t = 8h + c's two ql chunks and qh chunk give one chunk of each of the
  // sub-blocks s, s + 2, s + 4, s + 6 (4 running dots per group), scaled once all 4 chunks of each are in. The
  // layout stores the steps in this order, so each group's stream is read in address order, and the groups'
  // streams advance one line at a time in turn, each line prefetched kAhead on (as in the x16 decode).
  template <int kGroups>
  QF_AVX512 static void Decode(const uint8_t* first, size_t stride, int64_t cols, const View& act, __m512* out) {
    constexpr int kTailLines = static_cast<int>((kQ6_K16SuperBytes - 3072 + 63) / 64);  // scales and d
    static_assert(kTailLines <= 16);
    const int64_t nsb = cols / 256;
    __m512 acc[kGroups];
    for (int g = 0; g < kGroups; ++g) acc[g] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; ++i) {
      const ActQ8_K& y = act.y[i];
      // Opaque, so that the 64 activation words are broadcast straight from memory (a load each) instead of
      // being hoisted into general registers and stack slots (measured 22.4 vs 20.8 GB/s in the streaming
      // micro-benchmark, session 7).
      const int8_t* qs = y.qs;
      __asm__("" : "+r"(qs));
      const uint8_t* sb[kGroups];
      __m512i isum[kGroups];
      for (int g = 0; g < kGroups; ++g) {
        sb[g] = first + g * stride + i * kQ6_K16SuperBytes;
        isum[g] = _mm512_setzero_si512();
      }
      // The two halves h stay a loop (clang cannot unroll this one fully with 4 groups, and warns); everything
      // inside it is unrolled.
      for (int h = 0; h < 2; ++h)
        QF_UNROLL
        for (int half = 0; half < 2; ++half) {
          __m512i dot[kGroups][4];
          QF_UNROLL
          for (int g = 0; g < kGroups; ++g)
            QF_UNROLL
            for (int m = 0; m < 4; ++m) dot[g][m] = StartQ6_K(y, 8 * h + 2 * m + half);
          QF_UNROLL
          for (int c = 4 * half; c < 4 * half + 4; ++c) {
            const int t = 8 * h + c;
            for (int line = 0; line < 3; ++line)
              for (int g = 0; g < kGroups; ++g)
                _mm_prefetch(reinterpret_cast<const char*>(sb[g] + Q6_K16Ql(h, 0, c) + 64 * line + kAhead),
                             _MM_HINT_T0);
            if (t < kTailLines)  // steps 0..4 also prefetch one line each of the scales and d
              for (int g = 0; g < kGroups; ++g)
                _mm_prefetch(reinterpret_cast<const char*>(sb[g] + 3072 + 64 * t + kAhead), _MM_HINT_T0);
            QF_UNROLL
            for (int g = 0; g < kGroups; ++g) {
              __m512i q[4];
              UnpackQ6_K(sb[g], h, c, q);
              dot[g][0] = _mm512_dpbusd_epi32(dot[g][0], q[0], Broadcast4(qs + 128 * h + 4 * c));
              dot[g][1] = _mm512_dpbusd_epi32(dot[g][1], q[1], Broadcast4(qs + 128 * h + 32 + 4 * c));
              dot[g][2] = _mm512_dpbusd_epi32(dot[g][2], q[2], Broadcast4(qs + 128 * h + 64 + 4 * c));
              dot[g][3] = _mm512_dpbusd_epi32(dot[g][3], q[3], Broadcast4(qs + 128 * h + 96 + 4 * c));
            }
          }
          QF_UNROLL
          for (int g = 0; g < kGroups; ++g)
            QF_UNROLL
            for (int m = 0; m < 4; ++m)
              isum[g] = _mm512_add_epi32(isum[g], _mm512_mullo_epi32(dot[g][m], ScaleQ6_K(sb[g], 8 * h + 2 * m + half)));
        }
      for (int g = 0; g < kGroups; ++g) acc[g] = CombineQ6_K(acc[g], isum[g], sb[g], y.d);
    }
    for (int g = 0; g < kGroups; ++g) out[g] = acc[g];
  }
};

constexpr MatVecKernel kAvx512Q4_K = {"avx512", Prepare, packed::Rows<Q4_KOp>, packed::RowsBatch<Q4_KOp>};
constexpr MatVecKernel kAvx512Q6_K = {"avx512", Prepare, packed::Rows<Q6_KOp>, packed::RowsBatch<Q6_KOp>};

}  // namespace

const MatVecKernel* Avx512K16Kernel(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_K: return &kAvx512Q4_K;
    case GgmlType::Q6_K: return &kAvx512Q6_K;
    default: return nullptr;
  }
}

}  // namespace qforge
#else
namespace qforge {
const MatVecKernel* Avx512K16Kernel(GgmlType) { return nullptr; }
}  // namespace qforge
#endif

// AVX-512 VNNI kernels on the x16 layouts (packed_x16.h), bit-exact with their scalar spec. One zmm lane per row
// of a 16-row group: each 64-byte chunk of a block holds 4 weight bytes of every row, so each 4-element group of
// the block is one vpdpbusd of the 16 rows' weights against that group's 4 activation bytes broadcast to every
// lane. vpdpbusd multiplies unsigned by signed bytes, so weights are fed as unsigned (Q4_0: the nibble 0..15,
// Q8_0: q + 128) and the offset is folded into the start value -offset * sum(a) of the block, the same for every
// row. Then one conversion, one multiply (the rows' 16 scales by the activation's) and one FMA finish the block
// for 16 rows, and the result vector is 16 rows' outputs: no horizontal sums. The stored-layout kernels
// (matvec_avx512.cc) need a conversion, a multiply and an FMA per row and block pair plus a horizontal sum per
// row; in the 4096 x 4096 micro-benchmark (bench/matvec_bench.cc) Q4_0 in cache went from ~30 to ~63 GB/s.
#include "packed_x16.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "activation_quant.h"
#include "matvec_avx2.h"
#include "packed_avx512_inl.h"
#include "packed_x16_act.h"
#include "qforge/core/fp16.h"

// GCC 12 reports its own _mm512_undefined_*() merge operands as uninitialized (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#define QF_AVX512 QF_PACKED_AVX512

namespace qforge {
namespace {

using packed::Broadcast4;
using packed::kAhead;
using packed::NextInStream;
using packed::StreamAhead;
static_assert(kX16Rows == packed::kGroupRows);

using ActView = X16ActView;

ActView MakeActView(const PreparedActivation& act) { return MakeX16ActView(act); }

// One pass per block: the standard Q8_0 bytes (the same as QuantizeActAvx2's, and so the spec's: amax / 127 as
// the fp16 scale, each value times 127 / amax rounded to nearest-even) and the x16 extras after them. Decode
// runs this on one thread between two parallel products; quantizing first and then copying each block out of
// the standard bytes with an out-of-line fp16 conversion took ~6 us for a 5632-value input here.
QF_AVX512 void Prepare(const float* x, int64_t cols, PreparedActivation* act) {
  act->x = x;
  act->cols = cols;
  act->serial = NextActivationSerial();
  const int64_t nb = cols / 32;
  const size_t extra = X16ActExtraOffset(nb);
  act->quantized.resize(X16ActBytes(nb));
  uint8_t* base = act->quantized.data();
  int8_t* qs = reinterpret_cast<int8_t*>(base + extra);
  int32_t* nsum = reinterpret_cast<int32_t*>(base + extra + 32 * nb);
  float* d = reinterpret_cast<float*>(base + extra + 36 * nb);
  for (int64_t b = 0; b < nb; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    const uint16_t dh = _cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT);
    const __m512 mul = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    const __m512i q0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(x0, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i q1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(x1, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i bytes =
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtsepi32_epi8(q0)), _mm512_cvtsepi32_epi8(q1), 1);
    uint8_t* block = base + b * sizeof(ActQ8_0);
    std::memcpy(block + offsetof(ActQ8_0, d), &dh, 2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(block + offsetof(ActQ8_0, qs)), bytes);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + 32 * b), bytes);
    nsum[b] = -_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    d[b] = _cvtsh_ss(dh);
  }
}

// Each op: kQ quant bytes per block; kOffsetShift = log2 of the offset taken off the unsigned weights;
// UnpackChunk(q, c, w) writes the unsigned weights of all 16 rows held in the block's 64-byte line c: its
// kPer = 32 / kQ element groups, w[p] for elements kElem[kPer * c + p] and the 3 after it.
struct Q4_0Op {
  static constexpr int kQ = 16;
  static constexpr int kOffsetShift = 3;
  static constexpr int kElem[8] = {0, 16, 4, 20, 8, 24, 12, 28};
  QF_AVX512 static void UnpackChunk(const uint8_t* q, int c, __m512i* w) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const __m512i v = _mm512_loadu_si512(q + 64 * c);
    w[0] = _mm512_and_si512(v, low4);
    w[1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
  }
};

struct Q8_0Op {
  static constexpr int kQ = 32;
  static constexpr int kOffsetShift = 7;
  static constexpr int kElem[8] = {0, 4, 8, 12, 16, 20, 24, 28};
  QF_AVX512 static void UnpackChunk(const uint8_t* q, int c, __m512i* w) {
    w[0] = _mm512_xor_si512(_mm512_loadu_si512(q + 64 * c), _mm512_set1_epi8(static_cast<char>(0x80)));
  }
};

// The unsigned weights of all 16 rows for the block's 8 element groups, w[j] for elements kElem[j]..+3.
template <class Op>
QF_AVX512 inline void Unpack(const uint8_t* q, __m512i* w) {
  for (int c = 0; c < Op::kQ / 4; ++c) Op::UnpackChunk(q, c, w + c * (32 / Op::kQ));
}

// The start value of a block's integer sum: -offset * sum(a).
template <class Op>
QF_AVX512 inline __m512i Start(const ActView& a, int64_t b) {
  return _mm512_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(a.nsum[b]) << Op::kOffsetShift));
}

// The 16 rows of one group against kActs activations (prefill): out[t] lane r = the spec's result for row r,
// activation t. Each block's weights are unpacked once for the kActs activations.
template <class Op, int kActs>
QF_AVX512 void Tile(const uint8_t* group, int64_t nb, const ActView* acts, __m512* out) {
  constexpr int kGroups = 8;  // 4-element groups per block
  __m512 acc[kActs];
  for (int t = 0; t < kActs; ++t) acc[t] = _mm512_setzero_ps();
  const uint8_t* scales = group + kX16Rows * Op::kQ * nb;
  for (int64_t b = 0; b < nb; ++b) {
    __m512i w[kGroups];
    Unpack<Op>(group + kX16Rows * Op::kQ * b, w);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
    for (int t = 0; t < kActs; ++t) {
      const int8_t* a = acts[t].qs + 32 * b;
      // Two independent chains (integer sums are exact in any order).
      __m512i s0 = Start<Op>(acts[t], b), s1 = _mm512_setzero_si512();
      for (int j = 0; j < kGroups; j += 2) {
        s0 = _mm512_dpbusd_epi32(s0, w[j], Broadcast4(a + Op::kElem[j]));
        s1 = _mm512_dpbusd_epi32(s1, w[j + 1], Broadcast4(a + Op::kElem[j + 1]));
      }
      const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(acts[t].d[b]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), d, acc[t]);
    }
  }
  for (int t = 0; t < kActs; ++t) out[t] = acc[t];
}

// Decode (one activation): kGroups groups at once, each its own stream of weights. The streams advance one
// 64-byte line at a time in turn (line c of every group, then line c + 1), each line with its own prefetch
// kAhead bytes on. Reading a group's whole block (8 lines for Q8_0) before the next group's streamed 6-9% less
// from DRAM on session 10's Xeon (matvec_stream, 1 thread: Q8_0 15.4 -> 16.5-16.8 GB/s, Q4_0 15.7-15.9 ->
// 16.4-16.7; qforge bench Q8_0 decode 14.6-14.8 -> 15.6-15.8 tok/s), as a plain 4-stream reader did too (one
// line per stream per step 20.2-20.5 GB/s against 18.8-19.1 for 8 lines per stream per step).
template <class Op, int kGroups>
QF_AVX512 void DecodeGroups(const uint8_t* first, size_t stride, int64_t nb, const ActView& act, __m512* out) {
  constexpr int kLines = Op::kQ / 4;  // 64-byte lines per block of 16 rows
  constexpr int kPer = 8 / kLines;    // 4-element groups per line
  __m512 acc[kGroups];
  for (int g = 0; g < kGroups; ++g) acc[g] = _mm512_setzero_ps();
  // Each group is read as two streams, its quant bytes and, 8 times slower, its scales: each runs on into the
  // same part of the group kGroups on (StreamAhead).
  const int64_t qbytes = kX16Rows * Op::kQ * nb, sbytes = 32 * nb;
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* a = act.qs + 32 * b;
    const __m512 da = _mm512_set1_ps(act.d[b]);
    const __m512i start = Start<Op>(act, b);
    __m512i s[kGroups][2];  // two independent chains per group (integer sums are exact in any order)
    for (int g = 0; g < kGroups; ++g) {
      s[g][0] = start;
      s[g][1] = _mm512_setzero_si512();
    }
    for (int c = 0; c < kLines; ++c) {
      for (int g = 0; g < kGroups; ++g) {
        const uint8_t* q = first + g * stride + kX16Rows * Op::kQ * b;
        const uint8_t* quants = first + g * stride;
        _mm_prefetch(StreamAhead(q + 64 * c, kAhead, quants + qbytes, NextInStream(quants, stride, kGroups)),
                     _MM_HINT_T0);
        __m512i w[kPer];
        Op::UnpackChunk(q, c, w);
        for (int p = 0; p < kPer; ++p) {
          const int j = c * kPer + p;
          s[g][j & 1] = _mm512_dpbusd_epi32(s[g][j & 1], w[p], Broadcast4(a + Op::kElem[j]));
        }
      }
    }
    for (int g = 0; g < kGroups; ++g) {
      const uint8_t* scales = first + g * stride + kX16Rows * Op::kQ * nb + 32 * b;
      if (b % 2 == 0) {
        const uint8_t* own = first + g * stride + qbytes;  // this group's scales
        _mm_prefetch(StreamAhead(scales, kAhead / 8, own + sbytes, NextInStream(own, stride, kGroups)), _MM_HINT_T0);
      }
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales)));
      acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s[g][0], s[g][1])), _mm512_mul_ps(dw, da), acc[g]);
    }
  }
  for (int g = 0; g < kGroups; ++g) out[g] = acc[g];
}

// The layout's kernels for the shared drivers (packed_avx512_inl.h). Prefill tiles of up to 8 activations (16
// measured slower).
template <class Op>
struct X16 {
  using View = ActView;
  static constexpr int kMaxActs = 8;
  static constexpr int kDecodeGroups = packed::kX16DecodeGroups;
  static View MakeView(const PreparedActivation& act) { return MakeActView(act); }
  static size_t GroupBytes(size_t row_bytes, int64_t /*cols*/) { return kX16Rows * row_bytes; }
  template <int kGroups>
  QF_AVX512 static void Decode(const uint8_t* first, size_t stride, int64_t cols, const View& act, __m512* out) {
    DecodeGroups<Op, kGroups>(first, stride, cols / 32, act, out);
  }
  template <int kActs>
  QF_AVX512 static void Tile(const uint8_t* group, int64_t cols, const View* acts, __m512* out) {
    qforge::Tile<Op, kActs>(group, cols / 32, acts, out);
  }
};

constexpr MatVecKernel kAvx512Q4_0 = {"avx512", Prepare, packed::Rows<X16<Q4_0Op>>, packed::RowsBatch<X16<Q4_0Op>>};
constexpr MatVecKernel kAvx512Q8_0 = {"avx512", Prepare, packed::Rows<X16<Q8_0Op>>, packed::RowsBatch<X16<Q8_0Op>>};

}  // namespace

const MatVecKernel* Avx512X16Kernel(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return &kAvx512Q4_0;
    case GgmlType::Q8_0: return &kAvx512Q8_0;
    default: return nullptr;
  }
}

}  // namespace qforge
#else
namespace qforge {
const MatVecKernel* Avx512X16Kernel(GgmlType) { return nullptr; }
}  // namespace qforge
#endif

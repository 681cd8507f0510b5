// AVX-512 VNNI kernels for the legacy 32-element block types without a min: Q4_0, Q5_0, Q8_0, IQ4_NL (Q4_1
// and Q5_1 return nullptr and run the AVX2 table). Bit-exact with the scalar spec's lane-strided accumulation
// (dot_scalar.h): one zmm holds two consecutive blocks, i.e. exactly the spec's acc[0..15], and each block
// pair costs one vpdpbusd, one float multiply (the two scales) and one FMA per row.
//
// vpdpbusd multiplies unsigned by signed bytes, so the weights are fed as unsigned (Q4_0 nibble 0..15, Q5_0
// 0..31, Q8_0 and IQ4_NL + 128) and the offset is taken back through the accumulator's start value:
//   isum_l = sum_k (u_k - offset) a_k = vpdpbusd(-offset * sum_k a_k, u, a)   (all exact int32).
// The per-lane activation sums, the activation scales as 16 floats and the activation bytes of each block pair
// are computed once per activation by this table's prepare() and appended after the standard ActQ8_0 bytes
// (PreparedActivation::quantized is kernel-specific; the runtime shares it only between matrices whose kernels
// have the same prepare function, and all four types here use one).
#include "matvec_avx512.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "activation_quant.h"
#include "matvec_avx2.h"
#include "qforge/core/fp16.h"
#include "qforge/quant/blocks.h"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as the unused merge operand, which -W(maybe-)uninitialized
// reports at every use (GCC bug 105593, fixed in GCC 13): not a problem in this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#define QF_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx2,fma,f16c")))

namespace qforge {
namespace {

// What prepare() appends for blocks 2p and 2p+1 (the second all zero when the row has an odd block count, so
// it contributes exact zeros to lanes 8..15, which the kernels mask off anyway).
struct ActPair {
  int8_t qs[64];      // the two blocks' activation bytes
  int32_t nsum[16];   // -(a[4l] + ... + a[4l+3]) per lane l of acc[0..15]
  float d[16];        // lanes 0..7: block 2p's scale, lanes 8..15: block 2p+1's
};
static_assert(sizeof(ActPair) == 192);

size_t StandardBytes(int64_t cols) { return ActBytes(ActFormat::kQ8_0, cols); }
int64_t PairCount(int64_t cols) { return (cols / 32 + 1) / 2; }

// The appended pairs start at the byte offset stored in the 4 bytes right after the standard part; prepare()
// picks it so that they sit on a 64-byte boundary (aligned zmm loads). The offset is relative, so a copied
// PreparedActivation still works (the kernels use unaligned loads; they are only slower if misaligned).
const ActPair* Pairs(const PreparedActivation& act) {
  uint32_t offset;
  std::memcpy(&offset, act.quantized.data() + StandardBytes(act.cols), 4);
  return reinterpret_cast<const ActPair*>(act.quantized.data() + offset);
}

QF_AVX512 void PrepareAvx512(const float* x, int64_t cols, PreparedActivation* act) {
  act->x = x;
  act->cols = cols;
  const int64_t nb = cols / 32, np = PairCount(cols);
  const size_t standard = StandardBytes(cols);
  act->quantized.resize(standard + 4 + 63 + static_cast<size_t>(np) * sizeof(ActPair));
  uint8_t* base = act->quantized.data();
  QuantizeActAvx2(ActFormat::kQ8_0, x, base, cols);  // the standard part: same bytes as the spec
  const uintptr_t first = reinterpret_cast<uintptr_t>(base) + standard + 4;
  const auto offset = static_cast<uint32_t>(((first + 63) & ~uintptr_t{63}) - reinterpret_cast<uintptr_t>(base));
  std::memcpy(base + standard, &offset, 4);
  const auto* blocks = reinterpret_cast<const ActQ8_0*>(base);
  auto* pairs = reinterpret_cast<ActPair*>(base + offset);
  for (int64_t p = 0; p < np; ++p) {
    ActPair& out = pairs[p];
    std::memset(&out, 0, sizeof(out));
    for (int h = 0; h < 2 && 2 * p + h < nb; ++h) {
      const ActQ8_0& b = blocks[2 * p + h];
      std::memcpy(out.qs + 32 * h, b.qs, 32);
      const float d = F16ToF32(b.d);
      for (int l = 0; l < 8; ++l) {
        out.nsum[8 * h + l] = -(b.qs[4 * l] + b.qs[4 * l + 1] + b.qs[4 * l + 2] + b.qs[4 * l + 3]);
        out.d[8 * h + l] = d;
      }
    }
  }
}

// Unpacked weights of one block pair (or a lone last block in lanes 0..7): 64 unsigned bytes in element
// order (block 2p's 32 elements, then block 2p+1's) and the two fp16 scales as floats (8 lanes each).
struct PairWeights {
  __m512i u;
  __m512 dw;
};

// 64-byte permutation indices: bytes 0..31 read qs bytes at `first` + k % 16, bytes 32..63 at `second` + k % 16
// (each block's 16 nibble bytes twice: low nibbles are elements 0..15, high nibbles 16..31).
QF_AVX512 inline __m512i NibbleIndex(int first, int second) {
  alignas(64) uint8_t idx[64];
  for (int k = 0; k < 64; ++k) idx[k] = static_cast<uint8_t>((k < 32 ? first : second) + k % 16);
  return _mm512_load_si512(idx);
}
// The nibbles of v (bytes laid out as NibbleIndex or NibbleBytes put them): low nibble in bytes k % 32 < 16,
// high nibble in the others.
QF_AVX512 inline __m512i SplitNibbles(__m512i v) {
  // Words 8..15 and 24..31 (bytes 16..31, 48..63) shift right by 4, the others by 0: one variable shift.
  const __m512i shifts = _mm512_set_epi64(0x0004000400040004LL, 0x0004000400040004LL, 0, 0, 0x0004000400040004LL,
                                          0x0004000400040004LL, 0, 0);
  return _mm512_and_si512(_mm512_srlv_epi16(v, shifts), _mm512_set1_epi8(0x0F));
}

// Masks for loads of `bytes` bytes (fault-suppressing: nothing past a row's end is touched).
constexpr __mmask64 LoadMask(int bytes) { return bytes >= 64 ? ~__mmask64{0} : (__mmask64{1} << bytes) - 1; }

// A row's lone last block of `block` bytes at w, through a fault-suppressing masked load.
QF_AVX512 inline __m512i LoadLoneBlock(const uint8_t* w, int block) {
  return _mm512_maskz_loadu_epi8(LoadMask(block), w);
}

// The 16 nibble bytes (at byte `qs` of each `block`-byte block) of kBlocks blocks at w, each twice, as
// SplitNibbles takes them: a pair as two 16-byte broadcasts joined by one insert (loads plus one cheap shuffle;
// permuting the bytes of one 48-byte load instead took a 512-bit vpermb per row and pair: +12% in-cache Q4_0
// decode without it), a lone last block through LoadLoneBlock and NibbleIndex (the lanes of the missing second
// block are masked off later, so whatever the permutation puts there is harmless). Every byte read lies in
// the pair (the broadcasts end at the second block's last byte).
template <int kBlocks>
QF_AVX512 inline __m512i NibbleBytes(const uint8_t* w, int block, int qs) {
  if constexpr (kBlocks == 1) return _mm512_permutexvar_epi8(NibbleIndex(qs, 0), LoadLoneBlock(w, block));
  const __m256i first = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + qs)));
  const __m256i second =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + block + qs)));
  return _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
}

// The fp16 scales (the first word of each block) of kBlocks blocks at w as floats, 8 lanes each: a pair from one
// 32-byte load (every pair type here is longer) and a 256-bit word permutation, a lone block from one word.
template <int kBlocks>
QF_AVX512 inline __m512 BlockScales(const uint8_t* w, int block) {
  if constexpr (kBlocks == 1) {
    uint16_t h;
    std::memcpy(&h, w, 2);
    return _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<int16_t>(h)));
  }
  const int64_t second = 0x0001000100010001LL * (block / 2);  // words 8..15: the second block's first word
  const __m256i idx = _mm256_setr_epi64x(0, 0, second, second);
  const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  return _mm512_cvtph_ps(_mm256_permutexvar_epi16(idx, bytes));
}

// Each op: Load<kBlocks>(w) unpacks kBlocks (2, or 1 for a row's odd last block) consecutive blocks at w into
// PairWeights; kOffsetShift: log2 of the offset subtracted from the unsigned weights.

// Q4_0: 18-byte blocks (fp16 d, 16 bytes of nibbles), x = d * (q - 8).
struct Q4_0Op {
  static constexpr size_t kBytes = sizeof(BlockQ4_0);
  static constexpr int kOffsetShift = 3;
  template <int kBlocks>
  QF_AVX512 static PairWeights Load(const uint8_t* w) {
    return {SplitNibbles(NibbleBytes<kBlocks>(w, 18, 2)), BlockScales<kBlocks>(w, 18)};
  }
};

// IQ4_NL: Q4_0's layout, x = d * kIq4nlValues[q]; the table is looked up with 128 added (all values > -128).
struct IQ4_NLOp {
  static constexpr size_t kBytes = sizeof(BlockIQ4_NL);
  static constexpr int kOffsetShift = 7;
  template <int kBlocks>
  QF_AVX512 static PairWeights Load(const uint8_t* w) {
    const __m512i nib = SplitNibbles(NibbleBytes<kBlocks>(w, 18, 2));
    const __m512i table = _mm512_xor_si512(
        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues))),
        _mm512_set1_epi8(static_cast<char>(0x80)));
    return {_mm512_shuffle_epi8(table, nib), BlockScales<kBlocks>(w, 18)};
  }
};

// Q5_0: 22-byte blocks (fp16 d, 4 bytes of fifth bits, 16 bytes of nibbles), x = d * (q - 16).
struct Q5_0Op {
  static constexpr size_t kBytes = sizeof(BlockQ5_0);
  static constexpr int kOffsetShift = 4;
  template <int kBlocks>
  QF_AVX512 static PairWeights Load(const uint8_t* w) {
    const __m512i nib = SplitNibbles(NibbleBytes<kBlocks>(w, 22, 6));
    // Bit j of a block's qh is element j's fifth bit, so the two blocks' 32-bit words are a byte mask.
    uint32_t h0, h1 = 0;
    std::memcpy(&h0, w + 2, 4);
    if constexpr (kBlocks == 2) std::memcpy(&h1, w + 24, 4);
    const __mmask64 fifth = static_cast<__mmask64>(h0) | static_cast<__mmask64>(h1) << 32;
    return {_mm512_mask_add_epi8(nib, fifth, nib, _mm512_set1_epi8(16)), BlockScales<kBlocks>(w, 22)};
  }
};

// Q8_0: 34-byte blocks (fp16 d, 32 int8), fed as q + 128 (xor 0x80). A pair is 68 bytes: two 32-byte loads.
struct Q8_0Op {
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  static constexpr int kOffsetShift = 7;
  template <int kBlocks>
  QF_AVX512 static PairWeights Load(const uint8_t* w) {
    uint16_t h0, h1 = 0;
    std::memcpy(&h0, w, 2);
    __m512i q = _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2)));
    if constexpr (kBlocks == 2) {
      std::memcpy(&h1, w + 34, 2);
      q = _mm512_inserti64x4(q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 36)), 1);
    }
    const __m256i halfs = _mm256_setr_m128i(_mm_set1_epi16(static_cast<int16_t>(h0)),
                                            _mm_set1_epi16(static_cast<int16_t>(h1)));
    return {_mm512_xor_si512(q, _mm512_set1_epi8(static_cast<char>(0x80))), _mm512_cvtph_ps(halfs)};
  }
};

// acc lanes += the spec's step for one block pair: isum (exact, offset folded into the start value),
// d = dw * da (one rounding), one FMA. kBlocks == 1 (a row's odd last block) touches lanes 0..7 only.
template <class Op, int kBlocks>
QF_AVX512 inline __m512 AddPair(const PairWeights& pw, const ActPair& a, __m512 acc) {
  const __m512i start = _mm512_slli_epi32(_mm512_loadu_si512(a.nsum), Op::kOffsetShift);
  const __m512i isum = _mm512_dpbusd_epi32(start, pw.u, _mm512_loadu_si512(a.qs));
  const __m512 d = _mm512_mul_ps(pw.dw, _mm512_loadu_ps(a.d));
  if constexpr (kBlocks == 2) return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), d, acc);
  return _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(isum), d, acc, 0x00FF);
}

// The spec's row result from acc[0..15]: s_l = acc[l] + acc[8+l], t_l = s_l + s_{l+4}, (t0 + t2) + (t1 + t3).
QF_AVX512 inline float LaneStridedResult(__m512 acc) {
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
  const __m256 s = _mm256_add_ps(_mm512_castps512_ps256(acc), hi);
  __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  t = _mm_add_ps(t, _mm_movehl_ps(t, t));            // lane 0: t0 + t2, lane 1: t1 + t3
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// How far ahead (in rows) decode prefetches weights: two 8-row passes.
constexpr int64_t kPrefetchRows = 16;

// kRows rows at once: each activation pair is loaded once per kRows rows, and the kRows FMA chains are
// independent.
template <class Op, int kRows>
QF_AVX512 void RowsN(const uint8_t* w, size_t row_bytes, const ActPair* pairs, int64_t nb, float* out) {
  __m512 acc[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
  int64_t i = 0;
  const ActPair* a = pairs;
  for (; i + 2 <= nb; i += 2, ++a)
    for (int r = 0; r < kRows; ++r) {
      const uint8_t* wp = w + r * row_bytes + i * Op::kBytes;
      // kRows interleaved row streams defeat the hardware prefetcher in part (decode streamed Q4_0 at ~60% of
      // the read bandwidth): the same pair kPrefetchRows rows down (read two 8-row passes later) is fetched now.
      // Points 64 bytes apart from the pair's start, continued by the next pair's (and at a row's end by the
      // next row's first pair): every line is touched. Prefetches never fault, so the last passes may name
      // addresses past the matrix (computed as integers). Non-temporal: the weights are read once per
      // token (likely why it helps: they no longer evict the activation pairs and the KV cache; measured on
      // the 1.1B model at 1 thread: Q4_0 decode +5% over _MM_HINT_T0, Q8_0 +3%; T1 no better than T0, 8 or
      // 32 rows ahead no better than 16, prefetching the first 16 rows up front no gain).
      const char* next = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(wp) + kPrefetchRows * row_bytes);
      for (size_t o = 0; o < 2 * Op::kBytes; o += 64) _mm_prefetch(next + o, _MM_HINT_NTA);
      acc[r] = AddPair<Op, 2>(Op::template Load<2>(wp), *a, acc[r]);
    }
  if (i < nb)
    for (int r = 0; r < kRows; ++r)
      acc[r] = AddPair<Op, 1>(Op::template Load<1>(w + r * row_bytes + i * Op::kBytes), *a, acc[r]);
  for (int r = 0; r < kRows; ++r) out[r] = LaneStridedResult(acc[r]);
}

template <class Op>
QF_AVX512 void RowsAvx512(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0,
                          int64_t r1) {
  const ActPair* pairs = Pairs(act);
  const int64_t nb = act.cols / 32;
  int64_t r = r0;
  // 8 rows per pass: 4 gave ~15% slower Q4_0 decode on the 1.1B model, 12 or 16 no faster (within the noise).
  for (; r + 8 <= r1; r += 8) RowsN<Op, 8>(w + r * row_bytes, row_bytes, pairs, nb, y + (r - r0));
  for (; r + 4 <= r1; r += 4) RowsN<Op, 4>(w + r * row_bytes, row_bytes, pairs, nb, y + (r - r0));
  for (; r < r1; ++r) RowsN<Op, 1>(w + r * row_bytes, row_bytes, pairs, nb, y + (r - r0));
}

// kActs activations x kRows rows at once (prefill): each weight pair is unpacked once for kActs activations
// and each activation pair (L2-resident: 192 bytes per activation) is loaded once for kRows rows; every
// activation's lanes see exactly the operations rows() does for it alone. 4 x 4 (16 accumulators) measured
// faster than 8 activations x 1 or 2 rows: the activation loads from L2 were the limit.
template <class Op, int kActs, int kRows>
QF_AVX512 void BatchTile(const uint8_t* w, size_t row_bytes, const ActPair* const* pairs, int64_t nb, float* y,
                         size_t ldy, int64_t r) {
  __m512 acc[kRows][kActs];
  for (int j = 0; j < kRows; ++j)
    for (int t = 0; t < kActs; ++t) acc[j][t] = _mm512_setzero_ps();
  int64_t i = 0, p = 0;
  for (; i + 2 <= nb; i += 2, ++p) {
    PairWeights pw[kRows];
    for (int j = 0; j < kRows; ++j) pw[j] = Op::template Load<2>(w + (r + j) * row_bytes + i * Op::kBytes);
    for (int t = 0; t < kActs; ++t)
      for (int j = 0; j < kRows; ++j) acc[j][t] = AddPair<Op, 2>(pw[j], pairs[t][p], acc[j][t]);
  }
  if (i < nb) {
    for (int j = 0; j < kRows; ++j) {
      const PairWeights pw = Op::template Load<1>(w + (r + j) * row_bytes + i * Op::kBytes);
      for (int t = 0; t < kActs; ++t) acc[j][t] = AddPair<Op, 1>(pw, pairs[t][p], acc[j][t]);
    }
  }
  for (int j = 0; j < kRows; ++j)
    for (int t = 0; t < kActs; ++t) y[t * ldy + r + j] = LaneStridedResult(acc[j][t]);
}

template <class Op, int kActs>
QF_AVX512 void BatchN(const uint8_t* w, size_t row_bytes, const ActPair* const* pairs, int64_t nb, float* y, size_t ldy,
                      int64_t r0, int64_t r1) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) BatchTile<Op, kActs, 4>(w, row_bytes, pairs, nb, y, ldy, r);
  for (; r < r1; ++r) BatchTile<Op, kActs, 1>(w, row_bytes, pairs, nb, y, ldy, r);
}

template <class Op>
QF_AVX512 void RowsBatchAvx512(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                               size_t ldy, int64_t r0, int64_t r1) {
  const int64_t nb = acts[0].cols / 32;
  const ActPair* pairs[4];
  for (int t0 = 0; t0 < n;) {
    const int left = n - t0;
    const int k = left >= 4 ? 4 : left >= 2 ? 2 : 1;
    for (int t = 0; t < k; ++t) pairs[t] = Pairs(acts[t0 + t]);
    float* yt = y + static_cast<size_t>(t0) * ldy;
    switch (k) {
      case 4: BatchN<Op, 4>(w, row_bytes, pairs, nb, yt, ldy, r0, r1); break;
      case 2: BatchN<Op, 2>(w, row_bytes, pairs, nb, yt, ldy, r0, r1); break;
      default: BatchN<Op, 1>(w, row_bytes, pairs, nb, yt, ldy, r0, r1); break;
    }
    t0 += k;
  }
}

template <class Op>
constexpr MatVecKernel Avx512() {
  return {"avx512", PrepareAvx512, RowsAvx512<Op>, RowsBatchAvx512<Op>};
}

struct Entry {
  GgmlType type;
  MatVecKernel kernel;
};

constexpr Entry kAvx512[] = {
    {GgmlType::Q4_0, Avx512<Q4_0Op>()},
    {GgmlType::Q5_0, Avx512<Q5_0Op>()},
    {GgmlType::Q8_0, Avx512<Q8_0Op>()},
    {GgmlType::IQ4_NL, Avx512<IQ4_NLOp>()},
};

}  // namespace

const MatVecKernel* Avx512LegacyMatVecKernel(GgmlType type) {
  for (const auto& e : kAvx512)
    if (e.type == type) return &e.kernel;
  return nullptr;
}

}  // namespace qforge
#else
namespace qforge {
const MatVecKernel* Avx512LegacyMatVecKernel(GgmlType) { return nullptr; }
}  // namespace qforge
#endif

// AVX-512 (BW + VNNI) kernels for the k-quant types Q4_K, Q5_K and Q6_K (Q4_K_M and Q5_K_M are made of
// them); the other k-quants return nullptr and run the AVX2 table. Bit-exact with the scalar spec
// (dot_scalar.cc): per super-block the int32 isum = sum_j scale_j * dot_j and summs = sum_j min_j * bsums_j
// are exact in any order, then the float combine is CombineK's operations in the same order, done in SIMD
// lanes (one lane per row or per activation) with no FMA contraction.
//
// Layout trick: every type is unpacked into four zmm of 64 unsigned weight bytes whose elements are
// contiguous (element 64c + l of the super-block in byte l of vector c), so each pairs with one 64-byte load
// of the activation and one maddubs (u8 x s8 -> int16 pairs) + vpdpwssd (int16 pairs x per-sub-block int16
// scale, accumulated in int32). Decode walks 4 rows at once so the activation vectors, the horizontal sums
// and the float combine are shared by 4 rows; prefill unpacks each weight super-block once for 8
// activations.
#include "matvec_avx512.h"

#if defined(__x86_64__)
// GCC 12's avx512fintrin.h builds the 256-bit insert/extract/broadcast intrinsics from an uninitialized
// vector and warns at every use under -O3 (a header issue, not ours): silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "activation_quant.h"
#include "matvec_avx2.h"
#include "matvec_avx2_inl.h"
#include "qforge/quant/k_blocks.h"

#define QF_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx2,fma,f16c")))

namespace qforge {
namespace {

QF_AVX512 inline __m512i Load64(const void* p) { return _mm512_loadu_si512(p); }
QF_AVX512 inline __m512i Broadcast32(const void* p) {  // 32 bytes into both 256-bit halves
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
QF_AVX512 inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
QF_AVX512 inline uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// BlockDot (below) multiplies weight and activation bytes with vpdpbusd (int32 lane = 4 products) and packs
// the lanes of vectors 2k and 2k+1 into int16 (packs_epi32: per 128-bit lane, 4 words of 2k then 4 of
// 2k+1), so the scales come as one int16 vector per pair: word p (lane L = p / 8) gets the scale of the
// sub-block that vector 2k + (p % 8 >= 4) has in lane L. sub_block(c, L) is the type's map.
template <class SubBlock>
QF_AVX512 inline __m512i PairScaleIndex(int k, SubBlock sub_block) {
  alignas(64) int16_t idx[32];
  for (int p = 0; p < 32; ++p) idx[p] = static_cast<int16_t>(sub_block(2 * k + (p % 8 >= 4), p / 8));
  return _mm512_load_si512(idx);
}

// Q4_K: 8 sub-blocks of 32; 32-byte chunk c holds sub-block 2c in its low nibbles and 2c+1 in its high ones,
// so the chunk broadcast to both halves, shifted by 0 / 4 per half and masked, is elements 64c..64c+63.
struct Q4_KOp {
  static constexpr size_t kBytes = sizeof(block_q4_K);

  struct Consts {
    __m512i shift, m4, idx[2];
    QF_AVX512 Consts() {
      shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
      m4 = _mm512_set1_epi8(0x0F);
      // Vector c holds sub-block 2c in its low 256 bits (lanes 0, 1) and 2c+1 in its high ones.
      for (int k = 0; k < 2; ++k) idx[k] = PairScaleIndex(k, [](int c, int lane) { return 2 * c + lane / 2; });
    }
  };

  // q[c]: elements 64c..64c+63 as bytes 0..15; sc[c]: the int16 scale of each word pair's sub-block; *mins16:
  // the 8 mins, each twice, as 16 int16 (against the 16 bsums).
  QF_AVX512 static void Unpack(const Consts& k, const uint8_t* w, __m512i q[4], __m512i sc[2], __m256i* mins16) {
    uint64_t scales, mins;
    avx2::ScalesMinsK4(w + 4, &scales, &mins);
    const __m512i s16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(scales))));
    const __m128i m8 = _mm_cvtsi64_si128(static_cast<long long>(mins));
    *mins16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
    for (int c = 0; c < 4; ++c) {
      q[c] = _mm512_and_si512(_mm512_srlv_epi16(Broadcast32(w + 16 + 32 * c), k.shift), k.m4);
    }
    for (int j = 0; j < 2; ++j) sc[j] = _mm512_permutexvar_epi16(k.idx[j], s16);
  }

  // The per-activation extra term: summs = sum_j m_j * (bsums[2j] + bsums[2j+1]) in 8 int32 lanes.
  QF_AVX512 static __m256i Extra(__m256i mins16, const ActQ8_K& y, __m512i* /*acc*/) {
    return _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.bsums)), mins16);
  }
  QF_AVX512 static uint16_t D(const uint8_t* w) { return LoadU16(w); }
  QF_AVX512 static uint16_t DMin(const uint8_t* w) { return LoadU16(w + 2); }
  QF_AVX512 static uint32_t DAndMin(const uint8_t* w) { return LoadU32(w); }  // fp16 d | fp16 dmin << 16
};

// Q5_K: Q4_K's nibbles (at byte 48) plus a fifth bit: bit j of qh[l] belongs to element 32j + l, so for
// vector c the 32 qh bytes broadcast to both halves are tested against bit 2c (low half) / 2c+1 (high half)
// and 16 is added where set.
struct Q5_KOp {
  static constexpr size_t kBytes = sizeof(block_q5_K);

  struct Consts {
    Q4_KOp::Consts q4;
    __m512i bit[4], k16;
    QF_AVX512 Consts() {
      for (int c = 0; c < 4; ++c)
        bit[c] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi8(static_cast<char>(1 << (2 * c)))),
                                    _mm256_set1_epi8(static_cast<char>(1 << (2 * c + 1))), 1);
      k16 = _mm512_set1_epi8(16);
    }
  };

  QF_AVX512 static void Unpack(const Consts& k, const uint8_t* w, __m512i q[4], __m512i sc[2], __m256i* mins16) {
    uint64_t scales, mins;
    avx2::ScalesMinsK4(w + 4, &scales, &mins);
    const __m512i s16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(scales))));
    const __m128i m8 = _mm_cvtsi64_si128(static_cast<long long>(mins));
    *mins16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
    const __m512i qh = Broadcast32(w + 16);
    for (int c = 0; c < 4; ++c) {
      const __m512i lo4 = _mm512_and_si512(_mm512_srlv_epi16(Broadcast32(w + 48 + 32 * c), k.q4.shift), k.q4.m4);
      q[c] = _mm512_mask_add_epi8(lo4, _mm512_test_epi8_mask(qh, k.bit[c]), lo4, k.k16);
    }
    for (int j = 0; j < 2; ++j) sc[j] = _mm512_permutexvar_epi16(k.q4.idx[j], s16);
  }

  QF_AVX512 static __m256i Extra(__m256i mins16, const ActQ8_K& y, __m512i* acc) {
    return Q4_KOp::Extra(mins16, y, acc);
  }
  QF_AVX512 static uint16_t D(const uint8_t* w) { return LoadU16(w); }
  QF_AVX512 static uint16_t DMin(const uint8_t* w) { return LoadU16(w + 2); }
  QF_AVX512 static uint32_t DAndMin(const uint8_t* w) { return LoadU32(w); }
};

// Q6_K: 16 sub-blocks of 16. Vector c = 2h + p (elements 128h + 64p + 0..63) takes its low 4 bits from the
// 64 bytes ql[64h..64h+63] (low nibbles for p = 0, high for p = 1) and its top 2 bits from qh[32h..32h+31]
// broadcast to both halves (bits 4p..4p+1 in the low half, 4p+2..4p+3 in the high half), moved to bits 4..5.
// q is kept unsigned (0..63); the -32 offset is sum_j sc_j * (-32) * bsums_j, added as one more vpdpwssd.
struct Q6_KOp {
  static constexpr size_t kBytes = sizeof(block_q6_K);

  struct Consts {
    __m512i hshift0, hshift1, m4, m30, idx[2], minus32;
    QF_AVX512 Consts() {
      // p = 0: (qh << 4) and (qh << 2) land bits 0..1 / 2..3 at 4..5; p = 1: qh and (qh >> 2) (right shifts).
      hshift0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(4)), _mm256_set1_epi16(2), 1);
      hshift1 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
      m4 = _mm512_set1_epi8(0x0F);
      m30 = _mm512_set1_epi8(0x30);
      // Vector c holds sub-block 4c + L in 128-bit lane L.
      for (int k = 0; k < 2; ++k) idx[k] = PairScaleIndex(k, [](int c, int lane) { return 4 * c + lane; });
      minus32 = _mm512_set1_epi16(-32);
    }
  };

  // sc[c]: int16 scale per 128-bit lane (16 elements = one sub-block); *neg32sc: the 16 scales times -32
  // (|32 * 128| fits int16).
  QF_AVX512 static void Unpack(const Consts& k, const uint8_t* w, __m512i q[4], __m512i sc[2], __m256i* neg32sc) {
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 192)));
    *neg32sc = _mm256_mullo_epi16(s16, _mm512_castsi512_si256(k.minus32));
    const __m512i s512 = _mm512_castsi256_si512(s16);
    for (int h = 0; h < 2; ++h) {
      const __m512i l = Load64(w + 64 * h);
      const __m512i qh = Broadcast32(w + 128 + 32 * h);
      const __m512i lo0 = _mm512_and_si512(l, k.m4);
      const __m512i lo1 = _mm512_and_si512(_mm512_srli_epi16(l, 4), k.m4);
      const __m512i hi0 = _mm512_and_si512(_mm512_sllv_epi16(qh, k.hshift0), k.m30);
      const __m512i hi1 = _mm512_and_si512(_mm512_srlv_epi16(qh, k.hshift1), k.m30);
      q[2 * h] = _mm512_or_si512(lo0, hi0);
      q[2 * h + 1] = _mm512_or_si512(lo1, hi1);
    }
    for (int j = 0; j < 2; ++j) sc[j] = _mm512_permutexvar_epi16(k.idx[j], s512);
  }

  // Adds sum_j (-32 sc_j) * bsums_j to acc (its low 8 lanes); no min term.
  QF_AVX512 static __m256i Extra(__m256i neg32sc, const ActQ8_K& y, __m512i* acc) {
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.bsums));
    *acc = _mm512_dpwssd_epi32(*acc, _mm512_castsi256_si512(bs), _mm512_zextsi256_si512(neg32sc));
    return _mm256_setzero_si256();
  }
  QF_AVX512 static uint16_t D(const uint8_t* w) { return LoadU16(w + 208); }
  QF_AVX512 static uint16_t DMin(const uint8_t*) { return 0; }
  QF_AVX512 static uint32_t DAndMin(const uint8_t* w) { return D(w); }
};

QF_AVX512 inline __m256i Fold(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

// Opaque to the optimizer: keeps each product rounded on its own (no FMA contraction), as Keep() does.
template <class V>
QF_AVX512 inline V KeepV(V v) {
  __asm__("" : "+v"(v));
  return v;
}

// CombineK per lane with the spec's operations: s + (Keep(Keep(dy*dx) * isum) - Keep(Keep(dy*dmin) * summs)).
QF_AVX512 inline __m128 CombineK4(__m128 s, __m128i isum, __m128i summs, __m128 dx, __m128 dmin, __m128 dy) {
  const __m128 dall = KeepV(_mm_mul_ps(dy, dx)), dm = KeepV(_mm_mul_ps(dy, dmin));
  const __m128 a = KeepV(_mm_mul_ps(dall, _mm_cvtepi32_ps(isum)));
  const __m128 b = KeepV(_mm_mul_ps(dm, _mm_cvtepi32_ps(summs)));
  return _mm_add_ps(s, _mm_sub_ps(a, b));
}

// One weight super-block against one activation super-block whose 4 quarter vectors are yq: the int32 lanes
// of isum (16, folded later) and of summs (8).
template <class Op>
QF_AVX512 inline void BlockDot(const __m512i q[4], const __m512i sc[2], __m256i extra_w, const ActQ8_K& y,
                               const __m512i yq[4], __m512i* acc, __m256i* summs) {
  const __m512i zero = _mm512_setzero_si512();
  // A vpdpbusd lane is 4 products of a weight (0..63) and an activation (|y| <= 127): |sum| <= 32004, so the
  // packs to int16 are exact (no saturation) and vpdpwssd applies the scales (|sc| <= 128) in exact int32.
  __m512i d[4];
  for (int c = 0; c < 4; ++c) d[c] = _mm512_dpbusd_epi32(zero, q[c], yq[c]);
  __m512i a = _mm512_dpwssd_epi32(zero, _mm512_packs_epi32(d[0], d[1]), sc[0]);
  a = _mm512_dpwssd_epi32(a, _mm512_packs_epi32(d[2], d[3]), sc[1]);
  *summs = Op::Extra(extra_w, y, &a);
  *acc = a;
}

// How far ahead (in rows) decode prefetches weights.
constexpr size_t kPrefetchRows = 16;

// Decode: rows [r0, r1) four at a time (a short tail repeats its last row and stores only the real ones).
template <class Op>
QF_AVX512 void RowsK(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0,
                     int64_t r1) {
  const auto* ya = reinterpret_cast<const ActQ8_K*>(act.quantized.data());
  const int64_t nb = act.cols / 256;
  const typename Op::Consts k;
  const __m256i cvt_order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  for (int64_t r = r0; r < r1; r += 4) {
    const int nr = static_cast<int>(std::min<int64_t>(4, r1 - r));
    const uint8_t* wr[4];
    for (int j = 0; j < 4; ++j) wr[j] = w + (r + std::min(j, nr - 1)) * row_bytes;
    __m128 s = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      const ActQ8_K& yb = ya[i];
      __m512i yq[4];
      for (int c = 0; c < 4; ++c) yq[c] = Load64(yb.qs + 64 * c);
      __m256i v[8];
      uint32_t dd[4];
      for (int j = 0; j < 4; ++j) {
        const uint8_t* wb = wr[j] + i * Op::kBytes;
        // The same block kPrefetchRows rows down is what this lane reads four passes later: fetching it now
        // overlaps the DRAM latency with useful work (4 interleaved row streams defeat the hardware prefetcher
        // in part; measured +45% decode tok/s on the 1.1B Q4_K_M model at 8 rows, a few % more at 16; 32 rows
        // was no better). Prefetches never fault, so the last
        // passes may name addresses past the matrix (computed as integers).
        const char* next = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(wb) + kPrefetchRows * row_bytes);
        // Points 64 bytes apart through this block, continued by the next block's: every line is touched.
        for (size_t o = 0; o < Op::kBytes; o += 64) _mm_prefetch(next + o, _MM_HINT_T0);
        __m512i q[4], sc[2], acc;
        __m256i extra;
        Op::Unpack(k, wb, q, sc, &extra);
        BlockDot<Op>(q, sc, extra, yb, yq, &acc, &v[4 + j]);
        v[j] = Fold(acc);
        dd[j] = Op::DAndMin(wb);
      }
      const __m256i sums = avx2::Reduce8(v);  // lanes 0..3: isum of each row, 4..7: summs
      // Built in registers: 16-bit stores read back as one 16-byte load would stall store forwarding.
      const __m128i h = _mm_setr_epi32(static_cast<int>(dd[0]), static_cast<int>(dd[1]), static_cast<int>(dd[2]),
                                       static_cast<int>(dd[3]));
      const __m256 d = _mm256_permutevar8x32_ps(_mm256_cvtph_ps(h), cvt_order);  // 0..3: d, 4..7: dmin
      s = CombineK4(s, _mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1), _mm256_castps256_ps128(d),
                    _mm256_extractf128_ps(d, 1), _mm_set1_ps(yb.d));
    }
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, s);
    for (int j = 0; j < nr; ++j) y[r - r0 + j] = lanes[j];
  }
}

// Prefill: groups of 8 activations; each weight super-block is unpacked once per group. Rows go in tiles
// small enough for L2 (kTileRows rows of a 5632-column Q6_K matrix are 74 KB) and every activation group
// passes over a tile before the next, so the weights come from DRAM once instead of once per group.
constexpr int64_t kTileRows = 16;

template <class Op>
QF_AVX512 void RowsBatchK(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                          size_t ldy, int64_t r0, int64_t r1) {
  const int64_t nb = acts[0].cols / 256;
  const int groups = (n + 7) / 8;
  const typename Op::Consts k;
  // dy[(g * nb + i) * 8 + j]: the scale of activation 8g + j in super-block i (the last one repeated).
  std::vector<float> dy(static_cast<size_t>(8 * nb * groups));
  std::vector<const ActQ8_K*> ya(static_cast<size_t>(8 * groups));
  for (int g = 0; g < groups; ++g)
    for (int j = 0; j < 8; ++j) {
      const ActQ8_K* a = reinterpret_cast<const ActQ8_K*>(acts[std::min(8 * g + j, n - 1)].quantized.data());
      ya[8 * g + j] = a;
      for (int64_t i = 0; i < nb; ++i) dy[(g * nb + i) * 8 + j] = a[i].d;
    }
  for (int64_t rt = r0; rt < r1; rt += kTileRows) {
    const int64_t rt_end = std::min(r1, rt + kTileRows);
    for (int g = 0; g < groups; ++g) {
      const int nt = std::min(8, n - 8 * g);
      const ActQ8_K* const* yg = ya.data() + 8 * g;
      const float* dyg = dy.data() + g * nb * 8;
      for (int64_t r = rt; r < rt_end; ++r) {
        const uint8_t* wb = w + r * row_bytes;
        __m256 s = _mm256_setzero_ps();
        for (int64_t i = 0; i < nb; ++i, wb += Op::kBytes) {
          __m512i q[4], sc[2];
          __m256i extra;
          Op::Unpack(k, wb, q, sc, &extra);
          __m256i isum[8], summs[8];
          for (int j = 0; j < 8; ++j) {
            const ActQ8_K& yb = yg[j][i];
            __m512i yq[4], acc;
            for (int c = 0; c < 4; ++c) yq[c] = Load64(yb.qs + 64 * c);
            BlockDot<Op>(q, sc, extra, yb, yq, &acc, &summs[j]);
            isum[j] = Fold(acc);
          }
          s = avx2::CombineK8(s, avx2::Reduce8(isum), avx2::Reduce8(summs), _mm256_set1_ps(_cvtsh_ss(Op::D(wb))),
                        _mm256_set1_ps(_cvtsh_ss(Op::DMin(wb))), _mm256_loadu_ps(dyg + 8 * i));
        }
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, s);
        for (int j = 0; j < nt; ++j) y[(8 * g + j) * ldy + r] = lanes[j];
      }
    }
  }
}

// The standard Q8_K activation bytes (the AVX2 quantizer gives the spec's bytes).
void PrepareQ8_K(const float* x, int64_t cols, PreparedActivation* act) {
  act->x = x;
  act->cols = cols;
  act->quantized.resize(ActBytes(ActFormat::kQ8_K, cols));
  QuantizeActAvx2(ActFormat::kQ8_K, x, act->quantized.data(), cols);
}

template <class Op>
constexpr MatVecKernel Avx512K() {
  return {"avx512", PrepareQ8_K, RowsK<Op>, RowsBatchK<Op>};
}

constexpr MatVecKernel kQ4_K = Avx512K<Q4_KOp>();
constexpr MatVecKernel kQ5_K = Avx512K<Q5_KOp>();
constexpr MatVecKernel kQ6_K = Avx512K<Q6_KOp>();

}  // namespace

const MatVecKernel* Avx512KMatVecKernel(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_K: return &kQ4_K;
    case GgmlType::Q5_K: return &kQ5_K;
    case GgmlType::Q6_K: return &kQ6_K;
    default: return nullptr;
  }
}

}  // namespace qforge
#else
namespace qforge {
const MatVecKernel* Avx512KMatVecKernel(GgmlType) { return nullptr; }
}  // namespace qforge
#endif

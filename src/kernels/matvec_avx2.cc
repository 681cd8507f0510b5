// AVX2 (+FMA, F16C) matrix-vector kernels. Only the functions carry target attributes (the rest of the
// library stays baseline x86-64); matvec_simd.cc checks the CPU before handing these out.
// Contract: y[r] = W[r] · x like the scalar spec (dot_scalar.h). Activation quantizers give the same bytes as
// activation_quant.cc. Quantized dots compute the spec's integers exactly (integer sums are associative, so the
// SIMD order does not matter) and then do the spec's float steps in the same order: bit-exact. Q4_0, Q5_0, Q8_0
// and IQ4_NL keep the spec's 16 lane-strided float accumulators as two __m256 per row (one FMA per block).
// F32/F16/BF16 sum in double like the spec but in 16 lanes: tolerance derived in kernels_test.cc.
#include "matvec_avx2.h"
#include "matvec_avx2_inl.h"

#if defined(__x86_64__)

#include <algorithm>
#include <cstring>
#include <vector>

#include "activation_quant.h"
#include "dot_scalar.h"
#include "qforge/core/fp16.h"
#include "qforge/quant/blocks.h"
#include "qforge/quant/k_blocks.h"


namespace qforge {
namespace {

using namespace avx2;  // NOLINT: the shared helpers

// ---------------------------------------------------------------- activation quantizers

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
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  *d_out = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
  *d_float = d;
  const __m256 mul = _mm256_set1_ps(id);
  __m256i q[4];
  for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), mul),
                                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
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

// ---------------------------------------------------------------- legacy 32-element blocks

// One op per type: Weights() unpacks a block into 32 bytes (element order); DotI8 of it with an activation block
// gives 8 int32 lanes, lane l = the exact dot of elements 4l..4l+3. Types with a min (Q4_1, Q5_1) keep ggml's
// per-block spec and add: Act, Dot() (the lanes; split from Weights() so that batched kernels unpack a block once
// for many activations), Int() (both), Combine() (the spec's float step, dot_scalar.h) and CombineV() (the same
// step in 8 independent lanes, operands in the same order and rounded the same way: bit-identical per lane).
// dw/da: weight and activation scales; mw/sa: the weight min and the activation's d * sum(q).
struct Q4_0Op {
  static constexpr size_t kBytes = sizeof(BlockQ4_0);
  static constexpr bool kHasMin = false;
  QF_AVX2 static __m256i Weights(const uint8_t* w) { return _mm256_sub_epi8(Nibbles32(w + 2), _mm256_set1_epi8(8)); }
};

struct Q8_0Op {
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  static constexpr bool kHasMin = false;
  QF_AVX2 static __m256i Weights(const uint8_t* w) { return LoadBytes(w + 2); }
};

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

struct Q5_0Op {
  static constexpr size_t kBytes = sizeof(BlockQ5_0);
  static constexpr bool kHasMin = false;
  QF_AVX2 static __m256i Weights(const uint8_t* w) {
    return _mm256_sub_epi8(_mm256_or_si256(Nibbles32(w + 6), HighBits32(w + 2)), _mm256_set1_epi8(16));
  }
};

struct Q4_1Op {
  using Act = ActQ8_1;
  static constexpr size_t kBytes = sizeof(BlockQ4_1);
  static constexpr bool kHasMin = true;
  QF_AVX2 static __m256i Weights(const uint8_t* w) { return Nibbles32(w + 4); }
  QF_AVX2 static __m256i Dot(__m256i q, const Act& y) { return DotU8Scaled(q, LoadBytes(y.qs), _mm256_set1_epi16(1)); }
  QF_AVX2 static __m256i Int(const uint8_t* w, const Act& y) { return Dot(Weights(w), y); }
  QF_AVX2 static float Combine(float s, int32_t i, const uint8_t* w, const Act& y) {
    return CombineQ4_1(s, i, H2F(w), _cvtsh_ss(y.d), H2F(w + 2), _cvtsh_ss(y.s));
  }
  QF_AVX2 static __m256 CombineV(__m256 s, __m256 fi, __m256 dw, __m256 da, __m256 mw, __m256 sa) {
    const __m256 a = KeepV(_mm256_mul_ps(KeepV(_mm256_mul_ps(dw, da)), fi));
    return _mm256_add_ps(s, _mm256_add_ps(a, KeepV(_mm256_mul_ps(mw, sa))));
  }
};

struct Q5_1Op : Q4_1Op {
  static constexpr size_t kBytes = sizeof(BlockQ5_1);
  QF_AVX2 static __m256i Weights(const uint8_t* w) { return _mm256_or_si256(Nibbles32(w + 8), HighBits32(w + 4)); }
  QF_AVX2 static __m256i Int(const uint8_t* w, const Act& y) { return Dot(Weights(w), y); }
};

struct IQ4_NLOp {
  static constexpr size_t kBytes = sizeof(BlockIQ4_NL);
  static constexpr bool kHasMin = false;
  QF_AVX2 static __m256i Weights(const uint8_t* w) {
    const __m256i table =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
    return _mm256_shuffle_epi8(table, Nibbles32(w + 2));
  }
};

// ---- Q4_1, Q5_1 (ggml's per-block spec: one float chain per row, block order)

template <class Op>
QF_AVX2 float DotLegacy(const uint8_t* w, const uint8_t* act, int64_t n) {
  const auto* y = reinterpret_cast<const typename Op::Act*>(act);
  float sumf = 0;
  for (int64_t i = 0; i < n / 32; ++i, w += Op::kBytes) sumf = Op::Combine(sumf, HsumI32(Op::Int(w, y[i])), w, y[i]);
  return sumf;
}

// Four rows at once: the activation block is loaded once, the four lane-sums are reduced together (exact
// integer adds), and the four float chains are independent, so their add latencies overlap.
template <class Op>
QF_AVX2 void Rows4Legacy(const uint8_t* w, size_t row_bytes, const uint8_t* act, int64_t n, float* out) {
  const auto* y = reinterpret_cast<const typename Op::Act*>(act);
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const uint8_t* w0 = w;
  for (int64_t i = 0; i < n / 32; ++i, w0 += Op::kBytes) {
    const uint8_t *w1 = w0 + row_bytes, *w2 = w1 + row_bytes, *w3 = w2 + row_bytes;
    const __m256i a = _mm256_hadd_epi32(Op::Int(w0, y[i]), Op::Int(w1, y[i]));
    const __m256i b = _mm256_hadd_epi32(Op::Int(w2, y[i]), Op::Int(w3, y[i]));
    const __m256i c = _mm256_hadd_epi32(a, b);  // per 128-bit lane: rows 0..3, half-sums
    const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    s0 = Op::Combine(s0, _mm_cvtsi128_si32(t), w0, y[i]);
    s1 = Op::Combine(s1, _mm_extract_epi32(t, 1), w1, y[i]);
    s2 = Op::Combine(s2, _mm_extract_epi32(t, 2), w2, y[i]);
    s3 = Op::Combine(s3, _mm_extract_epi32(t, 3), w3, y[i]);
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

// 8 fp16 values, `stride` bytes apart -> 8 floats.
QF_AVX2 inline __m256 Gather8H(const uint8_t* p, size_t stride) {
  uint16_t h[8];
  for (int j = 0; j < 8; ++j) std::memcpy(&h[j], p + j * stride, 2);
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
}

// Eight rows at once, one float lane per row: the activation block is loaded once, the eight integer dots are
// reduced together and the eight float chains are combined in one vector op each. Each lane performs exactly
// the spec's sequence of roundings for its row.
template <class Op>
QF_AVX2 void Rows8Legacy(const uint8_t* w, size_t row_bytes, const uint8_t* act, int64_t n, float* out) {
  const auto* y = reinterpret_cast<const typename Op::Act*>(act);
  __m256 s = _mm256_setzero_ps();
  const uint8_t* wb = w;
  for (int64_t i = 0; i < n / 32; ++i, wb += Op::kBytes) {
    __m256i v[8];
    for (int j = 0; j < 8; ++j) v[j] = Op::Int(wb + j * row_bytes, y[i]);
    const __m256 fi = _mm256_cvtepi32_ps(Reduce8(v));
    const __m256 dw = Gather8H(wb, row_bytes);
    const __m256 da = _mm256_set1_ps(_cvtsh_ss(y[i].d));
    s = Op::CombineV(s, fi, dw, da, Gather8H(wb + 2, row_bytes), _mm256_set1_ps(_cvtsh_ss(y[i].s)));
  }
  _mm256_storeu_ps(out, s);
}

template <class Op>
QF_AVX2 void RowsLegacy(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0,
                        int64_t r1) {
  const uint8_t* a = act.quantized.data();
  int64_t r = r0;
  for (; r + 8 <= r1; r += 8) Rows8Legacy<Op>(w + r * row_bytes, row_bytes, a, act.cols, y + (r - r0));
  for (; r + 4 <= r1; r += 4) Rows4Legacy<Op>(w + r * row_bytes, row_bytes, a, act.cols, y + (r - r0));
  for (; r < r1; ++r) y[r - r0] = DotLegacy<Op>(w + r * row_bytes, a, act.cols);
}

// Many activations (prefill): one float lane per activation, eight at a time, so each weight block is unpacked
// once for eight activations and stays in cache for the next eight. Lane j runs the spec's roundings for
// activation j, so each result equals what RowsLegacy gives for that activation alone.
template <class Op>
QF_AVX2 void RowsBatchLegacy(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                             size_t ldy, int64_t r0, int64_t r1) {
  using Act = typename Op::Act;
  const int64_t nb = acts[0].cols / 32;
  // Per block, the eight activations' scales side by side (one aligned load per block in the inner loop).
  alignas(32) float da_buf[2 * 8 * 256];
  float* da = da_buf;
  float* sa = da_buf + 8 * 256;
  std::vector<float> da_heap;
  if (nb > 256) {
    da_heap.resize(static_cast<size_t>(2 * 8 * nb) + 8);
    da = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(da_heap.data()) + 31) & ~uintptr_t{31});
    sa = da + 8 * nb;
  }
  for (int t0 = 0; t0 < n; t0 += 8) {
    const int nt = std::min(8, n - t0);
    const Act* ya[8];
    for (int j = 0; j < 8; ++j) ya[j] = reinterpret_cast<const Act*>(acts[t0 + std::min(j, nt - 1)].quantized.data());
    for (int64_t i = 0; i < nb; ++i) {
      for (int j = 0; j < 8; ++j) {
        da[8 * i + j] = _cvtsh_ss(ya[j][i].d);
        sa[8 * i + j] = _cvtsh_ss(ya[j][i].s);
      }
    }
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* wb = w + r * row_bytes;
      __m256 s = _mm256_setzero_ps();
      for (int64_t i = 0; i < nb; ++i, wb += Op::kBytes) {
        const __m256i q = Op::Weights(wb);
        __m256i v[8];
        for (int j = 0; j < 8; ++j) v[j] = Op::Dot(q, ya[j][i]);
        const __m256 fi = _mm256_cvtepi32_ps(Reduce8(v));
        const __m256 dw = _mm256_set1_ps(H2F(wb));
        const __m256 dav = _mm256_load_ps(da + 8 * i);
        s = Op::CombineV(s, fi, dw, dav, _mm256_set1_ps(H2F(wb + 2)), _mm256_load_ps(sa + 8 * i));
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, s);
      for (int j = 0; j < nt; ++j) y[(t0 + j) * ldy + r] = lanes[j];
    }
  }
}

// ---- Q4_0, Q5_0, Q8_0, IQ4_NL (lane-strided spec, dot_scalar.h): acc[0..7] = even blocks, acc[8..15] = odd.

// d_i = float(dw) * float(da), rounded once, in all 8 lanes.
QF_AVX2 inline __m256 BlockScale(const uint8_t* w, const ActQ8_0& y) {
  return _mm256_set1_ps(H2F(w) * _cvtsh_ss(y.d));
}

// The spec's row result from the even- and odd-block accumulators (HsumF32 adds exactly in the spec's order:
// s_l = even_l + odd_l, t_l = s_l + s_{l+4}, (t_0 + t_2) + (t_1 + t_3)).
QF_AVX2 inline float LaneStridedResult(__m256 even, __m256 odd) { return HsumF32(_mm256_add_ps(even, odd)); }

// acc = fma(float(isum lanes), d, acc): the spec's one rounding per lane and block.
QF_AVX2 inline __m256 AddBlock(__m256i isum, __m256 d, __m256 acc) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
}

// kRows rows at once: the activation block is loaded once per kRows weight blocks; 2 * kRows accumulators
// (even/odd blocks) make the FMA chains independent.
template <class Op, int kRows>
QF_AVX2 void RowsLaneStridedN(const uint8_t* w, size_t row_bytes, const uint8_t* act, int64_t n, float* out) {
  const auto* y = reinterpret_cast<const ActQ8_0*>(act);
  const int64_t nb = n / 32;
  __m256 even[kRows], odd[kRows];
  for (int r = 0; r < kRows; ++r) even[r] = odd[r] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m256i a0 = LoadBytes(y[i].qs), a1 = LoadBytes(y[i + 1].qs);
    for (int r = 0; r < kRows; ++r) {
      const uint8_t* wb = w + r * row_bytes + i * Op::kBytes;
      even[r] = AddBlock(DotI8(Op::Weights(wb), a0), BlockScale(wb, y[i]), even[r]);
      odd[r] = AddBlock(DotI8(Op::Weights(wb + Op::kBytes), a1), BlockScale(wb + Op::kBytes, y[i + 1]), odd[r]);
    }
  }
  if (i < nb) {  // odd block count: the last block is even
    const __m256i a0 = LoadBytes(y[i].qs);
    for (int r = 0; r < kRows; ++r) {
      const uint8_t* wb = w + r * row_bytes + i * Op::kBytes;
      even[r] = AddBlock(DotI8(Op::Weights(wb), a0), BlockScale(wb, y[i]), even[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = LaneStridedResult(even[r], odd[r]);
}

template <class Op>
QF_AVX2 void RowsLaneStrided(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0,
                             int64_t r1) {
  const uint8_t* a = act.quantized.data();
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) RowsLaneStridedN<Op, 4>(w + r * row_bytes, row_bytes, a, act.cols, y + (r - r0));
  for (; r < r1; ++r) RowsLaneStridedN<Op, 1>(w + r * row_bytes, row_bytes, a, act.cols, y + (r - r0));
}

// Many activations (prefill): each weight block is unpacked once for 4 activations (8 accumulators); every
// activation's lanes see exactly the operations rows() does, so the results are identical.
template <class Op>
QF_AVX2 void RowsBatchLaneStrided(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                                  size_t ldy, int64_t r0, int64_t r1) {
  constexpr int kActs = 4;
  const int64_t nb = acts[0].cols / 32;
  std::vector<float> da(static_cast<size_t>(kActs * nb));  // da[kActs * i + t]: activation scales as floats
  for (int t0 = 0; t0 < n; t0 += kActs) {
    const int nt = std::min(kActs, n - t0);
    const ActQ8_0* ya[kActs];
    for (int t = 0; t < kActs; ++t)
      ya[t] = reinterpret_cast<const ActQ8_0*>(acts[t0 + std::min(t, nt - 1)].quantized.data());
    for (int64_t i = 0; i < nb; ++i)
      for (int t = 0; t < kActs; ++t) da[kActs * i + t] = _cvtsh_ss(ya[t][i].d);
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* wb = w + r * row_bytes;
      __m256 acc[2][kActs];
      for (int t = 0; t < kActs; ++t) acc[0][t] = acc[1][t] = _mm256_setzero_ps();
      for (int64_t i = 0; i < nb; ++i, wb += Op::kBytes) {
        const __m256i q = Op::Weights(wb);
        const __m256 dw = _mm256_set1_ps(H2F(wb));
        const int p = static_cast<int>(i & 1);
        for (int t = 0; t < kActs; ++t) {
          const __m256 d = _mm256_mul_ps(dw, _mm256_broadcast_ss(&da[kActs * i + t]));
          acc[p][t] = AddBlock(DotI8(q, LoadBytes(ya[t][i].qs)), d, acc[p][t]);
        }
      }
      for (int t = 0; t < nt; ++t) y[(t0 + t) * ldy + r] = LaneStridedResult(acc[0][t], acc[1][t]);
    }
  }
}

// ---------------------------------------------------------------- float weights

// Like the scalar spec (ggml's generic vec_dot_f32/f16/bf16): products rounded to float (exact for F16/BF16,
// whose 11/8-bit significands multiply into <= 22 bits), summed in double, 4 lanes x 4 accumulators instead
// of sequentially. The double sums differ by at most n * 2^-53 * sum|w_c x_c|, far below the final rounding
// to float, so results equal the spec or differ by one float rounding: tolerance in kernels_test.cc.
QF_AVX2 inline void AddProducts(__m256 p, __m256d* acc) {
  acc[0] = _mm256_add_pd(acc[0], _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
  acc[1] = _mm256_add_pd(acc[1], _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
}

QF_AVX2 inline double HsumF64(const __m256d* acc) {
  const __m256d s = _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3]));
  __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  t = _mm_add_sd(t, _mm_unpackhi_pd(t, t));
  return _mm_cvtsd_f64(t);
}

template <typename Load>
QF_AVX2 inline float DotFloatAvx2(const uint8_t* w, const uint8_t* act, int64_t n, int elem_bytes, Load load,
                                  float (*scalar)(const uint8_t*, const uint8_t*)) {
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  int64_t c = 0;
  for (; c + 16 <= n; c += 16) {
    AddProducts(_mm256_mul_ps(load(w + elem_bytes * c), load(act + elem_bytes * c)), acc);
    AddProducts(_mm256_mul_ps(load(w + elem_bytes * (c + 8)), load(act + elem_bytes * (c + 8))), acc + 2);
  }
  double tail = 0;
  for (; c < n; ++c) tail += static_cast<double>(scalar(w + elem_bytes * c, act + elem_bytes * c));
  return static_cast<float>(HsumF64(acc) + tail);
}

struct LoadF32x8 {
  QF_AVX2 __m256 operator()(const uint8_t* p) const { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
};
struct LoadF16x8 {
  QF_AVX2 __m256 operator()(const uint8_t* p) const {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};
struct LoadBF16x8 {  // bf16 -> f32 is a 16-bit shift
  QF_AVX2 __m256 operator()(const uint8_t* p) const {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};
float MulF32(const uint8_t* a, const uint8_t* b) { return Keep(LoadF32(a) * LoadF32(b)); }
float MulF16(const uint8_t* a, const uint8_t* b) {
  uint16_t x, y;
  std::memcpy(&x, a, 2);
  std::memcpy(&y, b, 2);
  return F16ToF32(x) * F16ToF32(y);
}
float MulBF16(const uint8_t* a, const uint8_t* b) {
  uint16_t x, y;
  std::memcpy(&x, a, 2);
  std::memcpy(&y, b, 2);
  return BF16ToF32(x) * BF16ToF32(y);
}

QF_AVX2 float DotF32Avx2(const uint8_t* w, const uint8_t* x, int64_t n) {
  return DotFloatAvx2(w, x, n, 4, LoadF32x8(), MulF32);
}
QF_AVX2 float DotF16Avx2(const uint8_t* w, const uint8_t* act, int64_t n) {
  return DotFloatAvx2(w, act, n, 2, LoadF16x8(), MulF16);
}
QF_AVX2 float DotBF16Avx2(const uint8_t* w, const uint8_t* act, int64_t n) {
  return DotFloatAvx2(w, act, n, 2, LoadBF16x8(), MulBF16);
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
  if constexpr (F == ActFormat::kF16) QuantizeActF16(x, reinterpret_cast<uint16_t*>(out), cols);  // F16C inside
  if constexpr (F == ActFormat::kBF16) QuantizeActBF16(x, reinterpret_cast<uint16_t*>(out), cols);  // scalar: cheap
}

template <RowDot Dot, bool kFloatAct>
QF_AVX2 void RowsAvx2(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0,
                      int64_t r1) {
  const uint8_t* a = kFloatAct ? reinterpret_cast<const uint8_t*>(act.x) : act.quantized.data();
  for (int64_t r = r0; r < r1; ++r) y[r - r0] = Dot(w + r * row_bytes, a, act.cols);
}

using RowsBatch = void (*)(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                           size_t ldy, int64_t r0, int64_t r1);

template <ActFormat F, RowDot Dot>
constexpr MatVecKernel Avx2(RowsBatch batch = nullptr) {
  return {"avx2", PrepareAvx2<F>, RowsAvx2<Dot, F == ActFormat::kF32>, batch};
}

template <ActFormat F, class Op>
constexpr MatVecKernel Avx2Legacy() {
  if constexpr (Op::kHasMin) {
    return {"avx2", PrepareAvx2<F>, RowsLegacy<Op>, RowsBatchLegacy<Op>};
  } else {
    return {"avx2", PrepareAvx2<F>, RowsLaneStrided<Op>, RowsBatchLaneStrided<Op>};
  }
}

struct Entry {
  GgmlType type;
  MatVecKernel kernel;
};

constexpr Entry kAvx2[] = {
    {GgmlType::F32, Avx2<ActFormat::kF32, DotF32Avx2>()},
    {GgmlType::F16, Avx2<ActFormat::kF16, DotF16Avx2>()},
    {GgmlType::BF16, Avx2<ActFormat::kBF16, DotBF16Avx2>()},
    {GgmlType::Q4_0, Avx2Legacy<ActFormat::kQ8_0, Q4_0Op>()},
    {GgmlType::Q4_1, Avx2Legacy<ActFormat::kQ8_1, Q4_1Op>()},
    {GgmlType::Q5_0, Avx2Legacy<ActFormat::kQ8_0, Q5_0Op>()},
    {GgmlType::Q5_1, Avx2Legacy<ActFormat::kQ8_1, Q5_1Op>()},
    {GgmlType::Q8_0, Avx2Legacy<ActFormat::kQ8_0, Q8_0Op>()},
    {GgmlType::IQ4_NL, Avx2Legacy<ActFormat::kQ8_0, IQ4_NLOp>()},
    {GgmlType::Q2_K, Avx2<ActFormat::kQ8_K, avx2::DotQ2_K>()},
    {GgmlType::Q3_K, Avx2<ActFormat::kQ8_K, avx2::DotQ3_K>()},
    {GgmlType::Q4_K, Avx2<ActFormat::kQ8_K, avx2::DotQ4_K>(avx2::RowsBatchQ4_K)},
    {GgmlType::Q5_K, Avx2<ActFormat::kQ8_K, avx2::DotQ5_K>()},
    {GgmlType::Q6_K, Avx2<ActFormat::kQ8_K, avx2::DotQ6_K>(avx2::RowsBatchQ6_K)},
    {GgmlType::IQ4_XS, Avx2<ActFormat::kQ8_K, avx2::DotIQ4_XS>()},
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

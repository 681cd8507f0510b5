// Element grids and level bit packing of the GGUF block types (include/qforge/algo/block_grid.h).
// Layouts: include/qforge/quant/blocks.h (32-element types, IQ4_XS) and k_blocks.h (k-quants). Blocks are
// addressed as bytes through offsetof: a tensor's blocks sit at arbitrary (2-aligned at best) offsets.
#include "qforge/algo/block_grid.h"

#include <cmath>
#include <cstddef>
#include <cstring>

#include "qforge/core/fp16.h"
#include "qforge/quant/blocks.h"
#include "qforge/quant/k_blocks.h"

namespace qforge {
namespace {

float LoadF16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

// 32-element nibble array: element j < 16 in the low nibble of qs[j], j >= 16 in the high nibble of qs[j-16].
int GetNibble32(const uint8_t* qs, int j) { return j < 16 ? qs[j] & 15 : qs[j - 16] >> 4; }
void SetNibble32(uint8_t* qs, int j, int v) {
  if (j < 16) qs[j] = static_cast<uint8_t>((qs[j] & 0xf0) | (v & 15));
  else qs[j - 16] = static_cast<uint8_t>((qs[j - 16] & 0x0f) | (v & 15) << 4);
}

int GetBit(const uint8_t* bytes, int bit) { return (bytes[bit / 8] >> (bit % 8)) & 1; }
void SetBit(uint8_t* bytes, int bit, int v) {
  const uint8_t mask = static_cast<uint8_t>(1u << (bit % 8));
  bytes[bit / 8] = static_cast<uint8_t>(v ? (bytes[bit / 8] | mask) : (bytes[bit / 8] & ~mask));
}

// k-quant 2-bit plane (Q2_K, Q3_K low bits): element 128h + 32k + l at qs[32h + l], bits 2k..2k+1.
int Get2Bit(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }
void Set2Bit(uint8_t* qs, int e, int v) {
  uint8_t& b = qs[32 * (e / 128) + e % 32];
  const int shift = 2 * ((e % 128) / 32);
  b = static_cast<uint8_t>((b & ~(3 << shift)) | (v & 3) << shift);
}
// Q4_K/Q5_K nibbles: element 64c + l in the low nibble of qs[32c + l], 64c + 32 + l in its high nibble.
int GetNibbleK(const uint8_t* qs, int e) {
  const uint8_t b = qs[32 * (e / 64) + e % 32];
  return (e % 64) < 32 ? b & 15 : b >> 4;
}
void SetNibbleK(uint8_t* qs, int e, int v) {
  uint8_t& b = qs[32 * (e / 64) + e % 32];
  b = (e % 64) < 32 ? static_cast<uint8_t>((b & 0xf0) | (v & 15)) : static_cast<uint8_t>((b & 0x0f) | (v & 15) << 4);
}
// The high-bit planes of Q3_K (hmask) and Q5_K (qh): element e at bit e/32 of byte e%32.
int GetHighPlane(const uint8_t* h, int e) { return (h[e % 32] >> (e / 32)) & 1; }
void SetHighPlane(uint8_t* h, int e, int v) {
  const uint8_t mask = static_cast<uint8_t>(1u << (e / 32));
  h[e % 32] = static_cast<uint8_t>(v ? (h[e % 32] | mask) : (h[e % 32] & ~mask));
}
// Q6_K: low 4 bits of element 128h + 32k + l in ql[64h + 32(k%2) + l] (k < 2 low nibble, k >= 2 high),
// high 2 bits in qh[32h + l] bits 2k.
void Q6Position(int e, int* ql_index, int* ql_shift, int* qh_index, int* qh_shift) {
  const int h = e / 128, k = (e % 128) / 32, l = e % 32;
  *ql_index = 64 * h + 32 * (k % 2) + l;
  *ql_shift = k < 2 ? 0 : 4;
  *qh_index = 32 * h + l;
  *qh_shift = 2 * k;
}

// Q4_K/Q5_K 6-bit sub-block scale and min j of the 12 packed bytes.
void ScaleMinK4(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
    *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
  }
}
// Q3_K 6-bit sub-block scale j (stored +32).
int ScaleQ3K(const uint8_t* s, int j) {
  const int lo = (s[j % 8] >> (j < 8 ? 0 : 4)) & 15;
  const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return lo | hi << 4;
}
int ScaleIQ4XS(const uint8_t* b, int ib) {
  uint16_t scales_h;
  std::memcpy(&scales_h, b + offsetof(BlockIQ4_XS, scales_h), 2);
  const uint8_t* scales_l = b + offsetof(BlockIQ4_XS, scales_l);
  return ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) | (((scales_h >> (2 * ib)) & 3) << 4);
}

ElementGrid Linear(float scale, float offset, int zero, int lo, int hi) {
  ElementGrid g;
  g.scale = scale;
  g.offset = offset;
  g.zero = zero;
  g.lo = lo;
  g.hi = hi;
  return g;
}
ElementGrid Iq4(float scale) {
  ElementGrid g;
  g.scale = scale;
  g.lo = 0;
  g.hi = 15;
  g.table = kIq4nlValues;
  return g;
}

}  // namespace

int ElementGrid::Nearest(float w, int fallback) const {
  if (scale == 0.0f) return fallback;
  int best = lo;
  float best_err = INFINITY;
  auto consider = [&](int level) {
    if (level < lo || level > hi) return;
    const float err = std::fabs(w - Value(level));
    if (err < best_err || (err == best_err && level < best)) {
      best_err = err;
      best = level;
    }
  };
  if (table) {
    for (int level = lo; level <= hi; ++level) consider(level);
    return best;
  }
  // The rounded quotient is the nearest level up to float rounding of the division; its neighbours settle
  // the cases where rounding of the decoded values moves the midpoint.
  const double t = (static_cast<double>(w) - offset) / scale;
  const double clamped = std::fmin(std::fmax(std::nearbyint(t) + zero, lo), hi);
  const int guess = static_cast<int>(clamped);
  for (int level = guess - 1; level <= guess + 1; ++level) consider(level);
  return best;
}

bool BlockGridSupports(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0:
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
    case GgmlType::IQ4_NL: case GgmlType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

ElementGrid GetElementGrid(GgmlType type, const uint8_t* b, int e) {
  switch (type) {
    case GgmlType::Q4_0: return Linear(LoadF16(b), 0.0f, 8, 0, 15);
    case GgmlType::Q4_1: return Linear(LoadF16(b), LoadF16(b + 2), 0, 0, 15);
    case GgmlType::Q5_0: return Linear(LoadF16(b), 0.0f, 16, 0, 31);
    case GgmlType::Q5_1: return Linear(LoadF16(b), LoadF16(b + 2), 0, 0, 31);
    case GgmlType::Q8_0: return Linear(LoadF16(b), 0.0f, 0, -127, 127);
    case GgmlType::IQ4_NL: return Iq4(LoadF16(b));
    case GgmlType::IQ4_XS: {
      const float d = LoadF16(b + offsetof(BlockIQ4_XS, d));
      return Iq4(d * static_cast<float>(ScaleIQ4XS(b, e / 32) - 32));
    }
    case GgmlType::Q2_K: {
      const uint8_t sc = b[offsetof(block_q2_K, scales) + e / 16];
      const float d = LoadF16(b + offsetof(block_q2_K, d)), dmin = LoadF16(b + offsetof(block_q2_K, dmin));
      const float dl = d * static_cast<float>(sc & 15), ml = dmin * static_cast<float>(sc >> 4);
      return Linear(dl, -ml, 0, 0, 3);
    }
    case GgmlType::Q3_K: {
      const float d = LoadF16(b + offsetof(block_q3_K, d));
      return Linear(d * static_cast<float>(ScaleQ3K(b + offsetof(block_q3_K, scales), e / 16) - 32), 0.0f, 4, 0, 7);
    }
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: {
      // Q4_K and Q5_K share the d, dmin, scales prefix (k_blocks.h).
      static_assert(offsetof(block_q4_K, scales) == offsetof(block_q5_K, scales));
      int sc, m;
      ScaleMinK4(b + offsetof(block_q4_K, scales), e / 32, &sc, &m);
      const float d = LoadF16(b + offsetof(block_q4_K, d)), dmin = LoadF16(b + offsetof(block_q4_K, dmin));
      const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
      return Linear(dl, -ml, 0, 0, type == GgmlType::Q4_K ? 15 : 31);
    }
    case GgmlType::Q6_K: {
      const int8_t sc = static_cast<int8_t>(b[offsetof(block_q6_K, scales) + e / 16]);
      const float d = LoadF16(b + offsetof(block_q6_K, d));
      return Linear(d * static_cast<float>(sc), 0.0f, 32, 0, 63);
    }
    default:
      return ElementGrid{};
  }
}

int GetLevel(GgmlType type, const uint8_t* b, int e) {
  switch (type) {
    case GgmlType::Q4_0: case GgmlType::IQ4_NL: return GetNibble32(b + 2, e);
    case GgmlType::Q4_1: return GetNibble32(b + 4, e);
    case GgmlType::Q5_0: return GetNibble32(b + 6, e) | GetBit(b + 2, e) << 4;
    case GgmlType::Q5_1: return GetNibble32(b + 8, e) | GetBit(b + 4, e) << 4;
    case GgmlType::Q8_0: return static_cast<int8_t>(b[2 + e]);
    case GgmlType::IQ4_XS: return GetNibble32(b + offsetof(BlockIQ4_XS, qs) + 16 * (e / 32), e % 32);
    case GgmlType::Q2_K: return Get2Bit(b + offsetof(block_q2_K, qs), e);
    case GgmlType::Q3_K:
      return Get2Bit(b + offsetof(block_q3_K, qs), e) | GetHighPlane(b + offsetof(block_q3_K, hmask), e) << 2;
    case GgmlType::Q4_K: return GetNibbleK(b + offsetof(block_q4_K, qs), e);
    case GgmlType::Q5_K:
      return GetNibbleK(b + offsetof(block_q5_K, qs), e) | GetHighPlane(b + offsetof(block_q5_K, qh), e) << 4;
    case GgmlType::Q6_K: {
      int qli, qls, qhi, qhs;
      Q6Position(e, &qli, &qls, &qhi, &qhs);
      const int low = (b[offsetof(block_q6_K, ql) + qli] >> qls) & 15;
      const int high = (b[offsetof(block_q6_K, qh) + qhi] >> qhs) & 3;
      return low | high << 4;
    }
    default:
      return 0;
  }
}

void SetLevel(GgmlType type, uint8_t* b, int e, int level) {
  switch (type) {
    case GgmlType::Q4_0: case GgmlType::IQ4_NL: SetNibble32(b + 2, e, level); return;
    case GgmlType::Q4_1: SetNibble32(b + 4, e, level); return;
    case GgmlType::Q5_0: SetNibble32(b + 6, e, level); SetBit(b + 2, e, level >> 4 & 1); return;
    case GgmlType::Q5_1: SetNibble32(b + 8, e, level); SetBit(b + 4, e, level >> 4 & 1); return;
    case GgmlType::Q8_0: b[2 + e] = static_cast<uint8_t>(static_cast<int8_t>(level)); return;
    case GgmlType::IQ4_XS: SetNibble32(b + offsetof(BlockIQ4_XS, qs) + 16 * (e / 32), e % 32, level); return;
    case GgmlType::Q2_K: Set2Bit(b + offsetof(block_q2_K, qs), e, level); return;
    case GgmlType::Q3_K:
      Set2Bit(b + offsetof(block_q3_K, qs), e, level);
      SetHighPlane(b + offsetof(block_q3_K, hmask), e, level >> 2 & 1);
      return;
    case GgmlType::Q4_K: SetNibbleK(b + offsetof(block_q4_K, qs), e, level); return;
    case GgmlType::Q5_K:
      SetNibbleK(b + offsetof(block_q5_K, qs), e, level);
      SetHighPlane(b + offsetof(block_q5_K, qh), e, level >> 4 & 1);
      return;
    case GgmlType::Q6_K: {
      int qli, qls, qhi, qhs;
      Q6Position(e, &qli, &qls, &qhi, &qhs);
      uint8_t& low = b[offsetof(block_q6_K, ql) + qli];
      uint8_t& high = b[offsetof(block_q6_K, qh) + qhi];
      low = static_cast<uint8_t>((low & ~(15 << qls)) | (level & 15) << qls);
      high = static_cast<uint8_t>((high & ~(3 << qhs)) | (level >> 4 & 3) << qhs);
      return;
    }
    default:
      return;
  }
}

}  // namespace qforge

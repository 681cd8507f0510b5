// Scalar per-type row dots (the spec, see dot_scalar.h): exact int32 per block (per 4-element lane for the
// legacy types without a min), then the float steps of dot_scalar.h. Bit layouts follow quant/blocks.h and quant/k_blocks.h.
#include "dot_scalar.h"

#include <cmath>
#include <cstring>

#include "qforge/core/fp16.h"
#include "qforge/quant/blocks.h"
#include "qforge/quant/k_blocks.h"

namespace qforge {
namespace {

// Blocks are copied out with memcpy: weight rows may sit at any byte address (GGUF data is only 32-byte
// aligned per tensor and the tests use odd offsets), so their fp16/float fields are never read in place.
template <typename B>
struct Blocks {
  const uint8_t* p;
  B operator[](int64_t i) const {
    B b;
    std::memcpy(&b, p + i * static_cast<int64_t>(sizeof(B)), sizeof(B));
    return b;
  }
};

uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Sum of q8[j] * v[j] over the 32 elements of a legacy block whose weight integers are v.
int32_t Dot32(const int8_t* q8, const int* v) {
  int32_t s = 0;
  for (int j = 0; j < 32; ++j) s += q8[j] * v[j];
  return s;
}

// Weight integers of one legacy block (element j order).
void Nibbles(const uint8_t* qs, int offset, int* v) {
  for (int j = 0; j < 16; ++j) {
    v[j] = (qs[j] & 15) - offset;
    v[j + 16] = (qs[j] >> 4) - offset;
  }
}
void Nibbles5(const uint8_t* qs, const uint8_t* qh, int offset, int* v) {
  const uint32_t h = LoadU32(qh);
  for (int j = 0; j < 16; ++j) {
    v[j] = ((qs[j] & 15) | ((h >> j) & 1) << 4) - offset;
    v[j + 16] = ((qs[j] >> 4) | ((h >> (j + 16)) & 1) << 4) - offset;
  }
}

}  // namespace

void LaneStridedSum::AddBlock(int64_t block, const int* w, const int8_t* a, float dw, float da) {
  const float d = dw * da;
  float* acc = acc_ + 8 * (block % 2);
  for (int l = 0; l < 8; ++l) {
    int32_t isum = 0;
    for (int k = 0; k < 4; ++k) isum += w[4 * l + k] * a[4 * l + k];
    acc[l] = std::fma(static_cast<float>(isum), d, acc[l]);
  }
}

float LaneStridedSum::Result() const {
  float s[8], t[4];
  for (int l = 0; l < 8; ++l) s[l] = acc_[l] + acc_[8 + l];
  for (int l = 0; l < 4; ++l) t[l] = s[l] + s[l + 4];
  return Keep(t[0] + t[2]) + Keep(t[1] + t[3]);
}

float DotQ4_0(const uint8_t* w, const uint8_t* act, int64_t n) {
  const Blocks<BlockQ4_0> x{w};
  const Blocks<ActQ8_0> y{act};
  LaneStridedSum sum;
  int v[32];
  for (int64_t i = 0; i < n / 32; ++i) {
    const auto xb = x[i];
    const auto yb = y[i];
    Nibbles(xb.qs, 8, v);
    sum.AddBlock(i, v, yb.qs, F16ToF32(xb.d), F16ToF32(yb.d));
  }
  return sum.Result();
}

float DotQ4_1(const uint8_t* w, const uint8_t* act, int64_t n) {
  const Blocks<BlockQ4_1> x{w};
  const Blocks<ActQ8_1> y{act};
  float sumf = 0;
  int v[32];
  for (int64_t i = 0; i < n / 32; ++i) {
    const auto xb = x[i];
    const auto yb = y[i];
    Nibbles(xb.qs, 0, v);
    sumf = CombineQ4_1(sumf, Dot32(yb.qs, v), F16ToF32(xb.d), F16ToF32(yb.d), F16ToF32(xb.m),
                       F16ToF32(yb.s));
  }
  return sumf;
}

float DotQ5_0(const uint8_t* w, const uint8_t* act, int64_t n) {
  const Blocks<BlockQ5_0> x{w};
  const Blocks<ActQ8_0> y{act};
  LaneStridedSum sum;
  int v[32];
  for (int64_t i = 0; i < n / 32; ++i) {
    const auto xb = x[i];
    const auto yb = y[i];
    Nibbles5(xb.qs, xb.qh, 16, v);
    sum.AddBlock(i, v, yb.qs, F16ToF32(xb.d), F16ToF32(yb.d));
  }
  return sum.Result();
}

float DotQ5_1(const uint8_t* w, const uint8_t* act, int64_t n) {
  const Blocks<BlockQ5_1> x{w};
  const Blocks<ActQ8_1> y{act};
  float sumf = 0;
  int v[32];
  for (int64_t i = 0; i < n / 32; ++i) {
    const auto xb = x[i];
    const auto yb = y[i];
    Nibbles5(xb.qs, xb.qh, 0, v);
    sumf = CombineQ4_1(sumf, Dot32(yb.qs, v), F16ToF32(xb.d), F16ToF32(yb.d), F16ToF32(xb.m),
                       F16ToF32(yb.s));
  }
  return sumf;
}

float DotQ8_0(const uint8_t* w, const uint8_t* act, int64_t n) {
  const Blocks<BlockQ8_0> x{w};
  const Blocks<ActQ8_0> y{act};
  LaneStridedSum sum;
  int v[32];
  for (int64_t i = 0; i < n / 32; ++i) {
    const auto xb = x[i];
    const auto yb = y[i];
    for (int j = 0; j < 32; ++j) v[j] = xb.qs[j];
    sum.AddBlock(i, v, yb.qs, F16ToF32(xb.d), F16ToF32(yb.d));
  }
  return sum.Result();
}

float DotIQ4_NL(const uint8_t* w, const uint8_t* act, int64_t n) {
  const Blocks<BlockIQ4_NL> x{w};
  const Blocks<ActQ8_0> y{act};
  LaneStridedSum sum;
  int v[32];
  for (int64_t i = 0; i < n / 32; ++i) {
    const auto xb = x[i];
    const auto yb = y[i];
    for (int j = 0; j < 16; ++j) {
      v[j] = kIq4nlValues[xb.qs[j] & 15];
      v[j + 16] = kIq4nlValues[xb.qs[j] >> 4];
    }
    sum.AddBlock(i, v, yb.qs, F16ToF32(xb.d), F16ToF32(yb.d));
  }
  return sum.Result();
}

void UnpackScalesMinsK4(const uint8_t s[12], uint8_t sc[8], uint8_t m[8]) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 63;
    m[j] = s[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    sc[j] = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
    m[j] = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
  }
}

void UnpackScalesQ3_K(const uint8_t s[12], int8_t sc[16]) {
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    sc[j] = static_cast<int8_t>((lo | hi << 4) - 32);
  }
}

float DotQ2_K(const uint8_t* w, const uint8_t* act, int64_t n) {
  const Blocks<block_q2_K> x{w};
  const Blocks<ActQ8_K> y{act};
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const auto xb = x[i];
    const auto yb = y[i];
    int32_t isum = 0, summs = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * j + l;  // element 128h + 32k + l' sits in qs[32h + l'] bits 2k
        const int q = (xb.qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
        s += yb.qs[e] * q;
      }
      isum += (xb.scales[j] & 15) * s;
      summs += yb.bsums[j] * (xb.scales[j] >> 4);
    }
    sumf = CombineK(sumf, isum, summs, F16ToF32(xb.d), F16ToF32(xb.dmin), yb.d);
  }
  return sumf;
}

float DotQ3_K(const uint8_t* w, const uint8_t* act, int64_t n) {
  const Blocks<block_q3_K> x{w};
  const Blocks<ActQ8_K> y{act};
  float sumf = 0;
  int8_t sc[16];
  for (int64_t i = 0; i < n / 256; ++i) {
    const auto xb = x[i];
    const auto yb = y[i];
    UnpackScalesQ3_K(xb.scales, sc);
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * j + l;
        const int lo = (xb.qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
        const int hi = (xb.hmask[e % 32] >> (e / 32)) & 1;
        s += yb.qs[e] * (lo - (hi ? 0 : 4));
      }
      isum += sc[j] * s;
    }
    sumf = CombineK(sumf, isum, 0, F16ToF32(xb.d), 0.0f, yb.d);
  }
  return sumf;
}

namespace {

// Q4_K and Q5_K share everything but the fifth bit (qh == nullptr for Q4_K).
float DotK4(uint16_t d, uint16_t dmin, const uint8_t* scales, const uint8_t* qh, const uint8_t* qs,
            const ActQ8_K& y, float sumf) {
  uint8_t sc[8], m[8];
  UnpackScalesMinsK4(scales, sc, m);
  int32_t isum = 0, summs = 0;
  for (int j = 0; j < 8; ++j) {
    int32_t s = 0;
    for (int l = 0; l < 32; ++l) {
      const int e = 32 * j + l;
      int q = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15;
      if (qh != nullptr) q |= ((qh[l] >> j) & 1) << 4;
      s += y.qs[e] * q;
    }
    isum += sc[j] * s;
    summs += m[j] * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
  }
  return CombineK(sumf, isum, summs, F16ToF32(d), F16ToF32(dmin), y.d);
}

}  // namespace

float DotQ4_K(const uint8_t* w, const uint8_t* act, int64_t n) {
  const Blocks<block_q4_K> x{w};
  const Blocks<ActQ8_K> y{act};
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const auto xb = x[i];
    sumf = DotK4(xb.d, xb.dmin, xb.scales, nullptr, xb.qs, y[i], sumf);
  }
  return sumf;
}

float DotQ5_K(const uint8_t* w, const uint8_t* act, int64_t n) {
  const Blocks<block_q5_K> x{w};
  const Blocks<ActQ8_K> y{act};
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const auto xb = x[i];
    sumf = DotK4(xb.d, xb.dmin, xb.scales, xb.qh, xb.qs, y[i], sumf);
  }
  return sumf;
}

float DotQ6_K(const uint8_t* w, const uint8_t* act, int64_t n) {
  const Blocks<block_q6_K> x{w};
  const Blocks<ActQ8_K> y{act};
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const auto xb = x[i];
    const auto yb = y[i];
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * j + l, h = e / 128, k = (e / 32) % 4, ll = e % 32;
        const uint8_t lbyte = xb.ql[64 * h + 32 * (k % 2) + ll];
        const int q = ((lbyte >> (4 * (k / 2))) & 15) | ((xb.qh[32 * h + ll] >> (2 * k)) & 3) << 4;
        s += yb.qs[e] * (q - 32);
      }
      isum += xb.scales[j] * s;
    }
    sumf = CombineK(sumf, isum, 0, F16ToF32(xb.d), 0.0f, yb.d);
  }
  return sumf;
}

float DotIQ4_XS(const uint8_t* w, const uint8_t* act, int64_t n) {
  const Blocks<BlockIQ4_XS> x{w};
  const Blocks<ActQ8_K> y{act};
  float sumf = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const auto xb = x[i];
    const auto yb = y[i];
    int32_t isum = 0;
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((xb.scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | ((xb.scales_h >> (2 * ib)) & 3) << 4;
      int32_t s = 0;
      for (int j = 0; j < 16; ++j) {
        s += yb.qs[32 * ib + j] * kIq4nlValues[xb.qs[16 * ib + j] & 15];
        s += yb.qs[32 * ib + 16 + j] * kIq4nlValues[xb.qs[16 * ib + j] >> 4];
      }
      isum += (ls - 32) * s;
    }
    sumf = CombineK(sumf, isum, 0, F16ToF32(xb.d), 0.0f, yb.d);
  }
  return sumf;
}

float DotF16(const uint8_t* w, const uint8_t* act, int64_t n) {
  double sum = 0;
  for (int64_t c = 0; c < n; ++c) {
    uint16_t a, b;
    std::memcpy(&a, w + 2 * c, 2);
    std::memcpy(&b, act + 2 * c, 2);
    sum += static_cast<double>(F16ToF32(a) * F16ToF32(b));  // exact: 11 + 11 significant bits
  }
  return static_cast<float>(sum);
}

float DotBF16(const uint8_t* w, const uint8_t* act, int64_t n) {
  double sum = 0;
  for (int64_t c = 0; c < n; ++c) {
    uint16_t a, b;
    std::memcpy(&a, w + 2 * c, 2);
    std::memcpy(&b, act + 2 * c, 2);
    sum += static_cast<double>(BF16ToF32(a) * BF16ToF32(b));  // exact: 8 + 8 significant bits
  }
  return static_cast<float>(sum);
}

float DotF32(const uint8_t* w, const uint8_t* xb, int64_t n) {
  const float* x = reinterpret_cast<const float*>(xb);
  double sum = 0;
  for (int64_t c = 0; c < n; ++c) {
    float a;
    std::memcpy(&a, w + 4 * c, 4);
    sum += static_cast<double>(Keep(a * x[c]));
  }
  return static_cast<float>(sum);
}

}  // namespace qforge

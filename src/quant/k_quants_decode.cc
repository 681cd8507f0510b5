// Bit packing of the k-quant blocks (layouts documented in include/qforge/quant/k_blocks.h), used by both
// directions, and the decoders, which unpack and then evaluate the formula in the same operation order as ggml's
// dequantize_row_* so the floats are bit-identical: (d·sc) first, then ·q, then − (dmin·m), each as its
// own rounded float operation (ISO C++ mode compiles without FMA contraction; statements are split so
// clang's default "contract within an expression" cannot fuse them either).
#include <cstring>

#include "k_quants_internal.h"
#include "qforge/core/fp16.h"

namespace qforge::kquant {
namespace {

// Q2_K/Q3_K 2-bit plane: element 128h + 32k + l at qs[32h + l], bits 2k.
void Pack2Bit(const int* q, uint8_t* qs) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const int* e = q + 128 * h + l;
      qs[32 * h + l] = static_cast<uint8_t>((e[0] & 3) | (e[32] & 3) << 2 | (e[64] & 3) << 4 | (e[96] & 3) << 6);
    }
}
void Unpack2Bit(const uint8_t* qs, int* q) {
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 4; ++k)
      for (int l = 0; l < 32; ++l) q[128 * h + 32 * k + l] = (qs[32 * h + l] >> (2 * k)) & 3;
}

// Q4_K/Q5_K 12-byte 6-bit scales and mins.
void PackScaleMinK4(const int* ls, const int* lm, uint8_t* s) {
  std::memset(s, 0, kKScaleSize);
  for (int j = 0; j < 8; ++j) {
    const int a = ls[j] & 63, m = lm[j] & 63;
    if (j < 4) {
      s[j] = static_cast<uint8_t>(a);
      s[j + 4] = static_cast<uint8_t>(m);
    } else {
      s[j + 4] = static_cast<uint8_t>((a & 15) | (m & 15) << 4);
      s[j - 4] |= static_cast<uint8_t>((a >> 4) << 6);
      s[j] |= static_cast<uint8_t>((m >> 4) << 6);
    }
  }
}
void UnpackScaleMinK4(const uint8_t* s, int* ls, int* lm) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      ls[j] = s[j] & 63;
      lm[j] = s[j + 4] & 63;
    } else {
      ls[j] = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
      lm[j] = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
  }
}

void PackQ45Common(const KValues& v, uint16_t* d, uint16_t* dmin, uint8_t* scales) {
  *d = v.d;
  *dmin = v.dmin;
  PackScaleMinK4(v.ls, v.lm, scales);
}

template <typename Block, void (*Unpack)(const Block&, KValues*)>
void DecodeAffine(const uint8_t* in, float* y, int64_t n, int sub_len) {
  for (int64_t i = 0; i < n / kKSuper; ++i) {
    Block b;
    std::memcpy(&b, in + i * sizeof(Block), sizeof(Block));
    KValues v;
    Unpack(b, &v);
    const float d = F16ToF32(b.d), dmin = F16ToF32(b.dmin);
    for (int j = 0; j < kKSuper / sub_len; ++j) {
      const float dl = d * static_cast<float>(v.ls[j]);
      const float ml = dmin * static_cast<float>(v.lm[j]);
      for (int l = 0; l < sub_len; ++l) {
        const float p = dl * static_cast<float>(v.L[sub_len * j + l]);
        y[sub_len * j + l] = p - ml;
      }
    }
    y += kKSuper;
  }
}

template <typename Block, void (*Unpack)(const Block&, KValues*)>
void DecodeSymmetric(const uint8_t* in, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kKSuper; ++i) {
    Block b;
    std::memcpy(&b, in + i * sizeof(Block), sizeof(Block));
    KValues v;
    Unpack(b, &v);
    const float d = F16ToF32(b.d);
    for (int j = 0; j < 16; ++j) {
      const float dl = d * static_cast<float>(v.ls[j]);
      for (int l = 0; l < 16; ++l) y[16 * j + l] = dl * static_cast<float>(v.L[16 * j + l]);
    }
    y += kKSuper;
  }
}

}  // namespace

void PackQ2K(const KValues& v, block_q2_K* b) {
  int q[kKSuper];
  for (int i = 0; i < kKSuper; ++i) q[i] = v.L[i];
  Pack2Bit(q, b->qs);
  for (int j = 0; j < 16; ++j) b->scales[j] = static_cast<uint8_t>((v.ls[j] & 15) | (v.lm[j] & 15) << 4);
  b->d = v.d;
  b->dmin = v.dmin;
}
void UnpackQ2K(const block_q2_K& b, KValues* v) {
  int q[kKSuper];
  Unpack2Bit(b.qs, q);
  for (int i = 0; i < kKSuper; ++i) v->L[i] = static_cast<int8_t>(q[i]);
  for (int j = 0; j < 16; ++j) {
    v->ls[j] = b.scales[j] & 15;
    v->lm[j] = b.scales[j] >> 4;
  }
  v->d = b.d;
  v->dmin = b.dmin;
}

void PackQ3K(const KValues& v, block_q3_K* b) {
  int q[kKSuper];
  std::memset(b->hmask, 0, sizeof(b->hmask));
  for (int e = 0; e < kKSuper; ++e) {
    const int u = v.L[e] + 4;  // 0..7
    q[e] = u & 3;
    if (u & 4) b->hmask[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
  }
  Pack2Bit(q, b->qs);
  std::memset(b->scales, 0, sizeof(b->scales));
  for (int j = 0; j < 16; ++j) {
    const int s = v.ls[j] + 32;  // 0..63
    b->scales[j % 8] |= static_cast<uint8_t>((s & 15) << (j < 8 ? 0 : 4));
    b->scales[8 + j % 4] |= static_cast<uint8_t>((s >> 4) << (2 * (j / 4)));
  }
  b->d = v.d;
}
void UnpackQ3K(const block_q3_K& b, KValues* v) {
  int q[kKSuper];
  Unpack2Bit(b.qs, q);
  for (int e = 0; e < kKSuper; ++e) {
    const int hi = (b.hmask[e % 32] >> (e / 32)) & 1;
    v->L[e] = static_cast<int8_t>(q[e] + 4 * hi - 4);
  }
  for (int j = 0; j < 16; ++j) {
    const int lo = (b.scales[j % 8] >> (j < 8 ? 0 : 4)) & 15;
    const int hi = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    v->ls[j] = (lo | hi << 4) - 32;
  }
  v->d = b.d;
}

void PackQ4K(const KValues& v, block_q4_K* b) {
  PackQ45Common(v, &b->d, &b->dmin, b->scales);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l)
      b->qs[32 * c + l] = static_cast<uint8_t>((v.L[64 * c + l] & 15) | (v.L[64 * c + 32 + l] & 15) << 4);
}
void UnpackQ4K(const block_q4_K& b, KValues* v) {
  UnpackScaleMinK4(b.scales, v->ls, v->lm);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      v->L[64 * c + l] = static_cast<int8_t>(b.qs[32 * c + l] & 15);
      v->L[64 * c + 32 + l] = static_cast<int8_t>(b.qs[32 * c + l] >> 4);
    }
  v->d = b.d;
  v->dmin = b.dmin;
}

void PackQ5K(const KValues& v, block_q5_K* b) {
  PackQ45Common(v, &b->d, &b->dmin, b->scales);
  std::memset(b->qh, 0, sizeof(b->qh));
  for (int e = 0; e < kKSuper; ++e)
    if (v.L[e] & 16) b->qh[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l)
      b->qs[32 * c + l] = static_cast<uint8_t>((v.L[64 * c + l] & 15) | (v.L[64 * c + 32 + l] & 15) << 4);
}
void UnpackQ5K(const block_q5_K& b, KValues* v) {
  UnpackScaleMinK4(b.scales, v->ls, v->lm);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      v->L[64 * c + l] = static_cast<int8_t>(b.qs[32 * c + l] & 15);
      v->L[64 * c + 32 + l] = static_cast<int8_t>(b.qs[32 * c + l] >> 4);
    }
  for (int e = 0; e < kKSuper; ++e)
    if ((b.qh[e % 32] >> (e / 32)) & 1) v->L[e] = static_cast<int8_t>(v->L[e] + 16);
  v->d = b.d;
  v->dmin = b.dmin;
}

void PackQ6K(const KValues& v, block_q6_K* b) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      int u[4];
      for (int k = 0; k < 4; ++k) u[k] = v.L[128 * h + 32 * k + l] + 32;  // 0..63
      b->ql[64 * h + l] = static_cast<uint8_t>((u[0] & 15) | (u[2] & 15) << 4);
      b->ql[64 * h + 32 + l] = static_cast<uint8_t>((u[1] & 15) | (u[3] & 15) << 4);
      b->qh[32 * h + l] = static_cast<uint8_t>((u[0] >> 4) | (u[1] >> 4) << 2 | (u[2] >> 4) << 4 | (u[3] >> 4) << 6);
    }
  for (int j = 0; j < 16; ++j) b->scales[j] = static_cast<int8_t>(v.ls[j]);
  b->d = v.d;
}
void UnpackQ6K(const block_q6_K& b, KValues* v) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t lo[4] = {static_cast<uint8_t>(b.ql[64 * h + l] & 15), static_cast<uint8_t>(b.ql[64 * h + 32 + l] & 15),
                             static_cast<uint8_t>(b.ql[64 * h + l] >> 4), static_cast<uint8_t>(b.ql[64 * h + 32 + l] >> 4)};
      for (int k = 0; k < 4; ++k) {
        const int hi = (b.qh[32 * h + l] >> (2 * k)) & 3;
        v->L[128 * h + 32 * k + l] = static_cast<int8_t>((lo[k] | hi << 4) - 32);
      }
    }
  for (int j = 0; j < 16; ++j) v->ls[j] = b.scales[j];
  v->d = b.d;
}

void DecodeRowQ2K(const uint8_t* in, float* y, int64_t n) { DecodeAffine<block_q2_K, UnpackQ2K>(in, y, n, 16); }
void DecodeRowQ3K(const uint8_t* in, float* y, int64_t n) { DecodeSymmetric<block_q3_K, UnpackQ3K>(in, y, n); }
void DecodeRowQ4K(const uint8_t* in, float* y, int64_t n) { DecodeAffine<block_q4_K, UnpackQ4K>(in, y, n, 32); }
void DecodeRowQ5K(const uint8_t* in, float* y, int64_t n) { DecodeAffine<block_q5_K, UnpackQ5K>(in, y, n, 32); }
void DecodeRowQ6K(const uint8_t* in, float* y, int64_t n) { DecodeSymmetric<block_q6_K, UnpackQ6K>(in, y, n); }

}  // namespace qforge::kquant

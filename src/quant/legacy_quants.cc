// The legacy 32-element block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: decoders bit-exact with ggml's
// dequantize_row_*, encoders that search the fp16 scale (and offset) for the lowest (importance-weighted)
// squared error, always including ggml's reference choice among the candidates (see quant_search.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "qforge/core/fp16.h"
#include "qforge/quant/blocks.h"
#include "qforge/quant/quant_search.h"
#include "qforge/quant/registry.h"
#include "uniform_search.h"

namespace qforge {
namespace {

// ---- shared packing -------------------------------------------------------------------------------

// Low nibbles of L[0..31] in Q4_0 order: byte j holds element j (low) and j + 16 (high).
void PackNibbles(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((L[j] & 0xf) | ((L[j + 16] & 0xf) << 4));
}

// Bit 4 of L[j] goes to bit j of a little-endian u32.
void PackHighBits(const uint8_t* L, uint8_t* qh) {
  uint32_t h = 0;
  for (int j = 0; j < 32; ++j) h |= static_cast<uint32_t>((L[j] >> 4) & 1u) << j;
  for (int b = 0; b < 4; ++b) qh[b] = static_cast<uint8_t>(h >> (8 * b));
}

uint32_t LoadU32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }

// Optional per-element weights of this block (nullptr = unweighted) and, when weighted, ggml-style
// proposal weights w * sqrt(sigma2 + x^2) used only to suggest extra least-squares refits.
struct BlockWeights {
  const float* w = nullptr;
  const float* fit = nullptr;
  float fit_buf[kQK32];
};

float RowSigma2(const float* x, int64_t n) {
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += static_cast<double>(x[j]) * x[j];
  return n ? static_cast<float>(s / n) : 0.0f;
}

void PrepareWeights(const float* x, const float* importance, float sigma2, BlockWeights& bw) {
  bw.w = importance;
  bw.fit = nullptr;
  if (!importance) return;
  for (int j = 0; j < kQK32; ++j) bw.fit_buf[j] = importance[j] * std::sqrt(sigma2 + x[j] * x[j]);
  bw.fit = bw.fit_buf;
}

// ---- symmetric types: Q4_0, Q5_0, Q8_0 ------------------------------------------------------------

// The symmetric types' grids and search widths. Without importance every type scores the format's reference
// scale (ggml's rule) and its least-squares refit and keeps the better one, which puts the RMSE below ggml's
// (LegacyQuant.EncodeErrorNotAboveGgml). Q5_0 also scores the scales mapping the extreme to either end, two
// 0.1 steps each way (~20 scores per block instead of 2). Q4_0 did too until its likelihood gain proved
// inconsistent: mean NLL loss vs F32, llama.cpp evaluating our files (QuantizeVsLlamaCpp.*Nll), wide vs
// refit only (llama.cpp's own Q4_0 in brackets): stories260K +0.0814 vs +0.0769 (+0.0751), BabyLlama +0.0651
// vs +0.0766 (+0.0822), while that search was half of `qforge quantize --type Q4_0`'s time. For Q5_0, the
// fallback of the k-quant mixes for rows that are not multiples of 256, it measurably pays: BabyLlama's
// Q4_K_M loses +0.0174 with it and +0.0198 without (llama.cpp +0.0176). Q8_0's reference scale never clips
// and its grid is fine: the refit is all it needs. With importance, the wide weighted search below runs.
struct SymmetricFormat {
  int qmin, qmax;
  int unweighted_steps;
  SymmetricReference ref;
};
constexpr SymmetricFormat kQ4_0Format{-8, 7, -1, SymmetricReference::kSignedMaxOverQmin};
constexpr SymmetricFormat kQ5_0Format{-16, 15, 2, SymmetricReference::kSignedMaxOverQmin};
constexpr SymmetricFormat kQ8_0Format{-128, 127, -1, SymmetricReference::kAbsMaxOverQmax};

// Searches d for x ~ d * (L - offset) with importance weights; the format's reference scale is always a
// candidate. The wide search (10 steps each way) pays because the weights move the optimum, and clipping a
// low-weight outlier may pay too.
float SearchSymmetricWeighted(const float* x, const BlockWeights& bw, const SymmetricFormat& f, uint8_t* L) {
  const float extra[1] = {SymmetricReferenceScale(x, f.qmin, f.qmax, f.ref)};
  ScaleSearchOptions opt;
  opt.steps = 10;
  opt.extra_scales = extra;
  opt.fit_weights = bw.fit;
  opt.allow_clipping = true;
  return SearchScale(x, bw.w, kQK32, QuantGrid::Uniform(f.qmin, f.qmax), L, opt).d;
}

// Scale and levels of every block of a row x[0..n): without importance (the common case) by the row search
// (uniform_search.h), a chunk of blocks per call; `emit(block index, d, L)` packs one block.
template <typename Emit>
void EncodeSymmetricRow(const float* x, int64_t n, const float* importance, const SymmetricFormat& f, Emit emit) {
  const int64_t n_blocks = n / kQK32;
  if (importance == nullptr) {
    constexpr int64_t kChunk = 64;
    float d[kChunk];
    uint8_t L[kChunk * kQK32];
    for (int64_t i0 = 0; i0 < n_blocks; i0 += kChunk) {
      const int64_t nb = std::min(kChunk, n_blocks - i0);
      SearchSymmetricUnweightedRow(x + i0 * kQK32, nb, f.qmin, f.qmax, f.unweighted_steps, f.ref, d, L);
      for (int64_t b = 0; b < nb; ++b) emit(i0 + b, d[b], L + b * kQK32);
    }
    return;
  }
  const float sigma2 = RowSigma2(x, n);
  BlockWeights bw;
  for (int64_t i = 0; i < n_blocks; ++i) {
    PrepareWeights(x + i * kQK32, importance + i * kQK32, sigma2, bw);
    uint8_t L[kQK32];
    const float d = SearchSymmetricWeighted(x + i * kQK32, bw, f, L);
    emit(i, d, L);
  }
}

void EncodeQ4_0(const float* x, uint8_t* out, int64_t n, const float* importance) {
  auto* y = reinterpret_cast<BlockQ4_0*>(out);
  EncodeSymmetricRow(x, n, importance, kQ4_0Format, [&](int64_t i, float d, const uint8_t* L) {
    BlockQ4_0 b;
    b.d = F32ToF16(d);
    PackNibbles(L, b.qs);
    std::memcpy(&y[i], &b, sizeof b);
  });
}

void DecodeQ4_0(const uint8_t* in, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK32; ++i, y += kQK32) {
    BlockQ4_0 b;
    std::memcpy(&b, in + i * sizeof b, sizeof b);
    const float d = F16ToF32(b.d);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((b.qs[j] & 0xf) - 8) * d;
      y[j + 16] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
    }
  }
}

void EncodeQ5_0(const float* x, uint8_t* out, int64_t n, const float* importance) {
  auto* y = reinterpret_cast<BlockQ5_0*>(out);
  EncodeSymmetricRow(x, n, importance, kQ5_0Format, [&](int64_t i, float d, const uint8_t* L) {
    BlockQ5_0 b;
    b.d = F32ToF16(d);
    PackHighBits(L, b.qh);
    PackNibbles(L, b.qs);
    std::memcpy(&y[i], &b, sizeof b);
  });
}

void DecodeQ5_0(const uint8_t* in, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK32; ++i, y += kQK32) {
    BlockQ5_0 b;
    std::memcpy(&b, in + i * sizeof b, sizeof b);
    const float d = F16ToF32(b.d);
    const uint32_t qh = LoadU32(b.qh);
    for (int j = 0; j < 16; ++j) {
      const int lo = (b.qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = static_cast<float>(lo - 16) * d;
      y[j + 16] = static_cast<float>(hi - 16) * d;
    }
  }
}

void EncodeQ8_0(const float* x, uint8_t* out, int64_t n, const float* importance) {
  auto* y = reinterpret_cast<BlockQ8_0*>(out);
  // The full int8 range is decodable; ggml's rule (amax / 127) stays a candidate.
  EncodeSymmetricRow(x, n, importance, kQ8_0Format, [&](int64_t i, float d, const uint8_t* L) {
    BlockQ8_0 b;
    b.d = F32ToF16(d);
    for (int j = 0; j < kQK32; ++j) b.qs[j] = static_cast<int8_t>(static_cast<int>(L[j]) - 128);
    std::memcpy(&y[i], &b, sizeof b);
  });
}

void DecodeQ8_0(const uint8_t* in, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK32; ++i, y += kQK32) {
    BlockQ8_0 b;
    std::memcpy(&b, in + i * sizeof b, sizeof b);
    const float d = F16ToF32(b.d);
    for (int j = 0; j < kQK32; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
  }
}

// ---- affine types: Q4_1, Q5_1 ---------------------------------------------------------------------

// x ~ d * q + m, q in 0..nmax; ggml's rule d = (max - min) / nmax, m = min is a starting point.
void SearchAffine(const float* x, const BlockWeights& bw, int nmax, uint8_t* L, float* d, float* m) {
  float mn = x[0], mx = x[0];
  for (int j = 1; j < kQK32; ++j) { mn = std::fmin(mn, x[j]); mx = std::fmax(mx, x[j]); }
  const float ed[1] = {(mx - mn) / nmax};
  const float em[1] = {mn};
  AffineSearchResult r = SearchScaleMin(x, bw.w, kQK32, nmax, L, ed, em, bw.w != nullptr ? 8 : 2, 0.25f, 4,
                                        /*allow_clipping=*/bw.w != nullptr);
  *d = r.d;
  *m = r.m;
}

void EncodeQ4_1(const float* x, uint8_t* out, int64_t n, const float* importance) {
  BlockWeights bw;
  auto* y = reinterpret_cast<BlockQ4_1*>(out);
  for (int64_t i = 0; i < n / kQK32; ++i, x += kQK32) {
    bw.w = importance ? importance + i * kQK32 : nullptr;
    uint8_t L[kQK32];
    float d, m;
    SearchAffine(x, bw, 15, L, &d, &m);
    BlockQ4_1 b;
    b.d = F32ToF16(d);
    b.m = F32ToF16(m);
    PackNibbles(L, b.qs);
    std::memcpy(&y[i], &b, sizeof b);
  }
}

void DecodeQ4_1(const uint8_t* in, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK32; ++i, y += kQK32) {
    BlockQ4_1 b;
    std::memcpy(&b, in + i * sizeof b, sizeof b);
    const float d = F16ToF32(b.d), m = F16ToF32(b.m);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(b.qs[j] & 0xf) * d + m;
      y[j + 16] = static_cast<float>(b.qs[j] >> 4) * d + m;
    }
  }
}

void EncodeQ5_1(const float* x, uint8_t* out, int64_t n, const float* importance) {
  BlockWeights bw;
  auto* y = reinterpret_cast<BlockQ5_1*>(out);
  for (int64_t i = 0; i < n / kQK32; ++i, x += kQK32) {
    bw.w = importance ? importance + i * kQK32 : nullptr;
    uint8_t L[kQK32];
    float d, m;
    SearchAffine(x, bw, 31, L, &d, &m);
    BlockQ5_1 b;
    b.d = F32ToF16(d);
    b.m = F32ToF16(m);
    PackHighBits(L, b.qh);
    PackNibbles(L, b.qs);
    std::memcpy(&y[i], &b, sizeof b);
  }
}

void DecodeQ5_1(const uint8_t* in, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK32; ++i, y += kQK32) {
    BlockQ5_1 b;
    std::memcpy(&b, in + i * sizeof b, sizeof b);
    const float d = F16ToF32(b.d), m = F16ToF32(b.m);
    const uint32_t qh = LoadU32(b.qh);
    for (int j = 0; j < 16; ++j) {
      const int lo = (b.qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = static_cast<float>(lo) * d + m;
      y[j + 16] = static_cast<float>(hi) * d + m;
    }
  }
}

const QuantType kLegacyTypes[] = {
    {GgmlType::Q4_0, EncodeQ4_0, DecodeQ4_0}, {GgmlType::Q4_1, EncodeQ4_1, DecodeQ4_1},
    {GgmlType::Q5_0, EncodeQ5_0, DecodeQ5_0}, {GgmlType::Q5_1, EncodeQ5_1, DecodeQ5_1},
    {GgmlType::Q8_0, EncodeQ8_0, DecodeQ8_0},
};

}  // namespace

std::span<const QuantType> LegacyQuantTypes() { return kLegacyTypes; }

}  // namespace qforge

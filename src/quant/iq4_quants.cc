// The 4-bit non-linear types IQ4_NL (32-element blocks, one fp16 scale) and IQ4_XS (256-element
// super-blocks: fp16 d times a 6-bit signed scale per 32-element sub-block), both on ggml's 16-level grid
// kIq4nlValues. Decoders are bit-exact with ggml; encoders search scales by the true (weighted) error.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "qforge/core/fp16.h"
#include "qforge/quant/blocks.h"
#include "qforge/quant/quant_search.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

const QuantGrid kGrid = QuantGrid::Table(kIq4nlValues, 16);

void PackNibbles(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((L[j] & 0xf) | ((L[j + 16] & 0xf) << 4));
}

// ggml's proposal weights (x^2 without importance, w * sqrt(sigma2 + x^2) with it; sigma2 = 2 * mean x^2
// over the super-block): used only to propose extra refits, never to score.
void FitWeights(const float* x, const float* w, int n, float sigma2, float* fit) {
  for (int j = 0; j < n; ++j) fit[j] = w ? w[j] * std::sqrt(sigma2 + x[j] * x[j]) : x[j] * x[j];
}

float Sigma2(const float* x, int n) {
  double s = 0;
  for (int j = 0; j < n; ++j) s += static_cast<double>(x[j]) * x[j];
  return static_cast<float>(2.0 * s / n);
}

// Best scale for one 32-element group on the IQ4 grid. The candidate set covers ggml's (inverse scales
// (values[0] + k) / max for |k| <= 7, and -max / values[0]) with finer steps, plus both grid ends.
ScaleSearchResult SearchGroup(const float* x, const float* w, float sigma2, uint8_t* L) {
  float fit[kQK32];
  FitWeights(x, w, kQK32, sigma2, fit);
  float amax = 0, max = 0;
  for (int j = 0; j < kQK32; ++j)
    if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
  const float extra[1] = {-max / kIq4nlValues[0]};
  ScaleSearchOptions opt;
  opt.steps = 8;
  opt.step = 1.0f;
  opt.extra_scales = extra;
  opt.fit_weights = fit;
  opt.allow_clipping = true;  // a non-linear grid has no uniform half step; ggml clips too
  return SearchScale(x, w, kQK32, kGrid, L, opt);
}

void EncodeIQ4_NL(const float* x, uint8_t* out, int64_t n, const float* importance) {
  for (int64_t i = 0; i < n / kQK32; ++i, x += kQK32) {
    const float* w = importance ? importance + i * kQK32 : nullptr;
    uint8_t L[kQK32];
    ScaleSearchResult r = SearchGroup(x, w, Sigma2(x, kQK32), L);
    BlockIQ4_NL b;
    b.d = F32ToF16(r.d);
    PackNibbles(L, b.qs);
    std::memcpy(out + i * sizeof b, &b, sizeof b);
  }
}

void DecodeIQ4_NL(const uint8_t* in, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK32; ++i, y += kQK32) {
    BlockIQ4_NL b;
    std::memcpy(&b, in + i * sizeof b, sizeof b);
    const float d = F16ToF32(b.d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(kIq4nlValues[b.qs[j] & 0xf]);
      y[j + 16] = d * static_cast<float>(kIq4nlValues[b.qs[j] >> 4]);
    }
  }
}

// ---- IQ4_XS ---------------------------------------------------------------------------------------

constexpr int kSub = kQK_K / kQK32;  // 8 sub-blocks

struct XsChoice {
  float d = 0;
  int l[kSub] = {};          // signed sub-block scales, -32..31
  uint8_t L[kQK_K] = {};
  double err = 0;
};

// For a fixed super-scale d, picks each sub-block's l near s_ib / d by the true error.
void ChooseSubScales(const float* x, const float* w, const float* s, float d, XsChoice& c) {
  c.d = d;
  c.err = 0;
  uint8_t trial[kQK32];
  for (int ib = 0; ib < kSub; ++ib) {
    const float* xb = x + ib * kQK32;
    const float* wb = w ? w + ib * kQK32 : nullptr;
    int lo = -32, hi = 31;
    if (d != 0) {
      float t = std::clamp(s[ib] / d, -33.0f, 32.0f);
      lo = std::max(-32, static_cast<int>(std::floor(t)) - 1);
      hi = std::min(31, static_cast<int>(std::ceil(t)) + 1);
    } else {
      lo = hi = 0;
    }
    double best = -1;
    for (int l = lo; l <= hi; ++l) {
      const float dl = d * static_cast<float>(l);
      double e = QuantizeFixedScale(xb, wb, kQK32, kGrid, dl, trial);
      if (best < 0 || e < best) {
        best = e;
        c.l[ib] = l;
        std::copy(trial, trial + kQK32, c.L + ib * kQK32);
      }
    }
    c.err += best;
  }
}

void EncodeIQ4_XSBlock(const float* x, const float* w, BlockIQ4_XS& b) {
  const float sigma2 = Sigma2(x, kQK_K);
  float s[kSub];
  float max_scale = 0;
  for (int ib = 0; ib < kSub; ++ib) {
    uint8_t L[kQK32];
    s[ib] = SearchGroup(x + ib * kQK32, w ? w + ib * kQK32 : nullptr, sigma2, L).d;
    if (std::fabs(s[ib]) > std::fabs(max_scale)) max_scale = s[ib];
  }
  XsChoice best, trial;
  ChooseSubScales(x, w, s, 0.0f, best);
  if (max_scale != 0) {
    // ggml's rule is d = -max_scale / 32 (largest sub-scale at l = -32); also try mapping it to
    // l = +31 and slightly larger d's that let the other sub-scales round better.
    for (float t = 24.0f; t <= 32.0f; t += 0.5f) {
      for (float sign : {-1.0f, 1.0f}) {
        if (sign > 0 && t > 31.0f) continue;
        ChooseSubScales(x, w, s, StoredF16(sign * max_scale / t), trial);
        if (trial.err < best.err) best = trial;
      }
    }
  }
  b.d = F32ToF16(best.d);
  b.scales_h = 0;
  std::memset(b.scales_l, 0, sizeof b.scales_l);
  for (int ib = 0; ib < kSub; ++ib) {
    const int ls = best.l[ib] + 32;
    b.scales_l[ib / 2] |= static_cast<uint8_t>((ls & 0xf) << (4 * (ib % 2)));
    b.scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * ib));
    PackNibbles(best.L + ib * kQK32, b.qs + 16 * ib);
  }
}

void EncodeIQ4_XS(const float* x, uint8_t* out, int64_t n, const float* importance) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    BlockIQ4_XS b;
    EncodeIQ4_XSBlock(x + i * kQK_K, importance ? importance + i * kQK_K : nullptr, b);
    std::memcpy(out + i * sizeof b, &b, sizeof b);
  }
}

void DecodeIQ4_XS(const uint8_t* in, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    BlockIQ4_XS b;
    std::memcpy(&b, in + i * sizeof b, sizeof b);
    const float d = F16ToF32(b.d);
    for (int ib = 0; ib < kSub; ++ib, y += kQK32) {
      const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) | (((b.scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* qs = b.qs + 16 * ib;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0xf]);
        y[j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
      }
    }
  }
}

const QuantType kIq4Types[] = {
    {GgmlType::IQ4_NL, EncodeIQ4_NL, DecodeIQ4_NL},
    {GgmlType::IQ4_XS, EncodeIQ4_XS, DecodeIQ4_XS},
};

}  // namespace

std::span<const QuantType> Iq4QuantTypes() { return kIq4Types; }

}  // namespace qforge

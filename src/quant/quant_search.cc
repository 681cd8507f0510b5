// Scale searches shared by the block encoders (see quant_search.h for the contract). All scoring goes
// through the fp16-rounded scale so the error reported is the error the decoder will reproduce.
#include "qforge/quant/quant_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "qforge/core/fp16.h"

namespace qforge {
namespace {

constexpr float kF16Max = 65504.0f;

inline float Weight(const float* w, int j) { return w ? w[j] : 1.0f; }

// Signed element of largest magnitude (the first one on ties); 0 for an all-zero or all-NaN group.
float SignedAbsMax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    float a = std::fabs(x[j]);
    if (a > amax) { amax = a; max = x[j]; }
  }
  return max;
}

}  // namespace

int QuantGrid::Nearest(float t) const {
  if (!values) {
    if (std::isnan(t)) return std::clamp(0, qmin, qmax) - qmin;
    float c = std::clamp(t, static_cast<float>(qmin), static_cast<float>(qmax));
    return static_cast<int>(std::round(c)) - qmin;
  }
  if (std::isnan(t)) t = 0;
  if (t <= values[0]) return 0;
  if (t >= values[count - 1]) return count - 1;
  int lo = 0, hi = count - 1;  // values[lo] < t < values[hi]
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    if (t < values[mid]) hi = mid; else lo = mid;
  }
  return (t - values[lo] <= values[hi] - t) ? lo : hi;
}

float StoredF16(float v) {
  if (std::isnan(v)) return 0.0f;
  v = std::clamp(v, -kF16Max, kF16Max);
  return F16ToF32(F32ToF16(v));
}

uint16_t StoredF16Bits(float v) { return F32ToF16(StoredF16(v)); }

double QuantizeFixedScale(const float* x, const float* w, int n, const QuantGrid& grid, float d, uint8_t* L) {
  double err = 0;
  const int zero = grid.Nearest(0.0f);
  for (int j = 0; j < n; ++j) {
    int l = d != 0 ? grid.Nearest(x[j] / d) : zero;
    // Division can land a hair off the true midpoint; checking the neighbour keeps the choice optimal.
    float y = grid.Level(l) * d;
    float e = x[j] - y;
    for (int nb : {l - 1, l + 1}) {
      if (nb < 0 || nb >= grid.size()) continue;
      float e2 = x[j] - grid.Level(nb) * d;
      if (std::fabs(e2) < std::fabs(e)) { e = e2; l = nb; }
    }
    if (L) L[j] = static_cast<uint8_t>(l);
    err += static_cast<double>(Weight(w, j)) * static_cast<double>(e) * e;
  }
  return err;
}

float LeastSquaresScale(const float* x, const float* w, int n, const QuantGrid& grid, const uint8_t* L) {
  double sumlx = 0, suml2 = 0;
  for (int j = 0; j < n; ++j) {
    double l = grid.Level(L[j]);
    sumlx += Weight(w, j) * l * x[j];
    suml2 += Weight(w, j) * l * l;
  }
  return suml2 > 0 ? static_cast<float>(sumlx / suml2) : 0.0f;
}

// True if some x / d lies more than half a step beyond the grid's ends (that element gets clipped).
bool Clips(const float* x, int n, const QuantGrid& grid, float d) {
  if (d == 0) {
    for (int j = 0; j < n; ++j)
      if (x[j] != 0) return true;
    return false;
  }
  const float lo = grid.Level(0) - 0.5f, hi = grid.Level(grid.size() - 1) + 0.5f;
  for (int j = 0; j < n; ++j) {
    float t = x[j] / d;
    if (!(t >= lo && t <= hi)) return true;
  }
  return false;
}

ScaleSearchResult SearchScale(const float* x, const float* w, int n, const QuantGrid& grid, uint8_t* L,
                              const ScaleSearchOptions& opt) {
  uint8_t trial[256], refit[256], any_L[256];
  constexpr double kInf = std::numeric_limits<double>::infinity();
  ScaleSearchResult best{0.0f, kInf}, any{0.0f, kInf};  // best non-clipping / best overall
  auto consider = [&](float d_raw, uint8_t* idx) {
    const float d = StoredF16(d_raw);
    double e = QuantizeFixedScale(x, w, n, grid, d, idx);
    if (e < any.err || any.err == kInf) { any = {d, e}; std::copy(idx, idx + n, any_L); }
    if ((e < best.err || best.err == kInf) && (opt.allow_clipping || !Clips(x, n, grid, d))) {
      best = {d, e};
      std::copy(idx, idx + n, L);
    }
  };
  auto consider_with_refit = [&](float d_raw) {
    consider(d_raw, trial);
    consider(LeastSquaresScale(x, w, n, grid, trial), refit);
    if (opt.fit_weights) consider(LeastSquaresScale(x, opt.fit_weights, n, grid, trial), refit);
  };

  consider(0.0f, trial);
  const float max = SignedAbsMax(x, n);
  if (max != 0 && std::isfinite(max)) {
    for (float target : {grid.Level(0), grid.Level(grid.size() - 1)}) {
      for (int k = -opt.steps; k <= opt.steps; ++k) {
        float inv = (target + k * opt.step) / max;
        if (inv != 0 && std::isfinite(inv)) consider_with_refit(1.0f / inv);
      }
    }
  }
  for (float d : opt.extra_scales) consider_with_refit(d);
  if (best.err == kInf) {  // nothing fits without clipping (saturated or NaN input): take the best overall
    best = any;
    std::copy(any_L, any_L + n, L);
  }
  return best;
}

double QuantizeFixedScaleMin(const float* x, const float* w, int n, int nmax, float d, float m, uint8_t* L) {
  double err = 0;
  for (int j = 0; j < n; ++j) {
    int q = 0;
    if (d != 0) {
      float t = (x[j] - m) / d;
      if (std::isnan(t)) t = 0;
      q = static_cast<int>(std::round(std::clamp(t, 0.0f, static_cast<float>(nmax))));
    }
    float e = x[j] - (static_cast<float>(q) * d + m);
    for (int nb : {q - 1, q + 1}) {
      if (nb < 0 || nb > nmax) continue;
      float e2 = x[j] - (static_cast<float>(nb) * d + m);
      if (std::fabs(e2) < std::fabs(e)) { e = e2; q = nb; }
    }
    if (L) L[j] = static_cast<uint8_t>(q);
    err += static_cast<double>(Weight(w, j)) * static_cast<double>(e) * e;
  }
  return err;
}

AffineSearchResult SearchScaleMin(const float* x, const float* w, int n, int nmax, uint8_t* L,
                                  std::span<const float> extra_d, std::span<const float> extra_m, int steps,
                                  float step, int iterations, bool allow_clipping) {
  uint8_t trial[256], any_L[256];
  float mn = std::numeric_limits<float>::infinity(), mx = -mn;
  for (int j = 0; j < n; ++j) { mn = std::min(mn, x[j]); mx = std::max(mx, x[j]); }
  if (!(mn <= mx)) { mn = 0; mx = 0; }  // all NaN

  constexpr double kInf = std::numeric_limits<double>::infinity();
  AffineSearchResult best{0, 0, kInf}, any{0, 0, kInf};
  auto clips = [&](float d, float m) {
    for (int j = 0; j < n; ++j) {
      float t = d != 0 ? (x[j] - m) / d : (x[j] == m ? 0.0f : -1.0f);
      if (!(t >= -0.5f && t <= nmax + 0.5f)) return true;
    }
    return false;
  };
  auto score = [&](float d_raw, float m_raw) {
    const float d = StoredF16(d_raw), m = StoredF16(m_raw);
    double e = QuantizeFixedScaleMin(x, w, n, nmax, d, m, trial);
    if (e < any.err || any.err == kInf) { any = {d, m, e}; std::copy(trial, trial + n, any_L); }
    if ((e < best.err || best.err == kInf) && (allow_clipping || !clips(d, m))) {
      best = {d, m, e};
      std::copy(trial, trial + n, L);
    }
  };
  // Alternate: indices for (d, m) -> weighted LS fit of (d, m) for those indices -> ...
  auto refine = [&](float d, float m) {
    score(d, m);
    for (int it = 0; it < iterations; ++it) {
      double sw = 0, sq = 0, sq2 = 0, sx = 0, sqx = 0;
      for (int j = 0; j < n; ++j) {
        double wj = Weight(w, j), q = trial[j];
        sw += wj; sq += wj * q; sq2 += wj * q * q; sx += wj * x[j]; sqx += wj * q * x[j];
      }
      double det = sw * sq2 - sq * sq;
      if (!(det > 0) || sw <= 0) break;
      float nd = static_cast<float>((sw * sqx - sq * sx) / det);
      float nm = static_cast<float>((sq2 * sx - sq * sqx) / det);
      if (!std::isfinite(nd) || !std::isfinite(nm)) break;
      if (StoredF16(nd) == StoredF16(d) && StoredF16(nm) == StoredF16(m)) break;
      d = nd; m = nm;
      score(d, m);
    }
  };

  score(0.0f, mn);  // constant block: everything at the minimum
  const float range = mx - mn;
  if (range > 0 && std::isfinite(range)) {
    for (int k = -steps; k <= steps; ++k) {
      float den = nmax + k * step;
      if (den > 0) refine(range / den, mn);
    }
  }
  for (size_t i = 0; i < extra_d.size() && i < extra_m.size(); ++i) refine(extra_d[i], extra_m[i]);
  if (best.err == kInf) {
    best = any;
    std::copy(any_L, any_L + n, L);
  }
  return best;
}

}  // namespace qforge

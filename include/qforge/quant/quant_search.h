// Shared scale-search helpers for block quantizers: given a group of values x, per-element error weights w
// and a fixed grid of levels, find the (fp16-stored) scale, or scale and offset, that minimise
//   E = sum_j w_j * (x_j - xhat_j)^2
// where xhat is computed exactly as the decoder will (scale rounded to fp16 first, float products).
// Every candidate is scored by that true error, so adding candidates can only lower E: callers pass their
// format's classic choice (e.g. ggml's absmax rule) as an extra candidate to never do worse than it.
// Cost: O(n * candidates) per group.
#pragma once

#include <cstdint>
#include <span>

namespace qforge {

// The levels a quantized index can take, ascending. Either uniform integers qmin..qmax (values == nullptr,
// index i means level qmin + i) or a table of `count` int8 levels (non-linear grids such as IQ4_NL).
struct QuantGrid {
  int qmin = 0;
  int qmax = 0;
  const int8_t* values = nullptr;
  int count = 0;

  static QuantGrid Uniform(int qmin, int qmax) { return {qmin, qmax, nullptr, qmax - qmin + 1}; }
  static QuantGrid Table(const int8_t* v, int n) { return {v[0], v[n - 1], v, n}; }
  int size() const { return count; }
  float Level(int i) const { return values ? static_cast<float>(values[i]) : static_cast<float>(qmin + i); }
  // Index of the level nearest t (ties to the lower level for tables, half away from zero for uniform).
  int Nearest(float t) const;
};

// The float a scale becomes once stored as fp16 (round-to-nearest-even), saturated to +-65504 so an
// overflowing scale never decodes to Inf/NaN; NaN becomes 0.
float StoredF16(float v);
uint16_t StoredF16Bits(float v);

// Error of x ~ d * level[L[j]] for a fixed (already fp16-representable) d, choosing each L[j] as the
// nearest level to x_j / d (optimal per element for a fixed d). w == nullptr means all weights 1.
// If d == 0 every element takes the level nearest 0. Writes L if non-null.
double QuantizeFixedScale(const float* x, const float* w, int n, const QuantGrid& grid, float d, uint8_t* L);

// Weighted least-squares scale for fixed indices: d = sum w*l*x / sum w*l^2 (0 if the denominator is 0).
float LeastSquaresScale(const float* x, const float* w, int n, const QuantGrid& grid, const uint8_t* L);

struct ScaleSearchOptions {
  // Candidate inverse scales are (target + k * step) / max for target in {first level, last level} and
  // k in -steps..steps, where max is the element of largest magnitude.
  int steps = 10;
  float step = 0.1f;
  // Extra scales to try verbatim (e.g. the format's reference rule), after fp16 rounding.
  std::span<const float> extra_scales = {};
  // Optional second set of weights used only to propose least-squares refits (scoring always uses w).
  const float* fit_weights = nullptr;
  // false: only scales that keep every x / d within half a step of the grid's ends are accepted (so each
  // element's error is at most half a step: the RTN guarantee), unless no candidate qualifies (e.g. a
  // scale saturated at the fp16 maximum), in which case the best clipping one is used.
  bool allow_clipping = false;
};

struct ScaleSearchResult {
  float d = 0;       // fp16-representable scale (StoredF16 applied)
  double err = 0;    // weighted squared error with that d
};

// Symmetric search: x ~ d * level[L]. For each candidate scale: quantize, score, refit by least squares,
// round to fp16, re-quantize and score again; keeps the best. Fills L (n indices) for the winner.
ScaleSearchResult SearchScale(const float* x, const float* w, int n, const QuantGrid& grid, uint8_t* L,
                              const ScaleSearchOptions& opt = {});

struct AffineSearchResult {
  float d = 0;       // fp16-representable scale
  float m = 0;       // fp16-representable offset (the value of index 0)
  double err = 0;
};

// Affine search for x ~ d * q + m with q in 0..nmax (Q4_1, Q5_1 and similar): starting points
// d = (max - min) / (nmax + k * step), m = min (k in -steps..steps, plus `extra` (d, m) pairs), each refined
// by alternating nearest-index assignment and a 2x2 weighted least-squares fit of (d, m), all scored with
// fp16-rounded d and m exactly as decoded (q * d + m). Fills L with the winning q. allow_clipping as in
// ScaleSearchOptions: by default (x - m) / d must stay within [-0.5, nmax + 0.5] when any candidate allows.
AffineSearchResult SearchScaleMin(const float* x, const float* w, int n, int nmax, uint8_t* L,
                                  std::span<const float> extra_d = {}, std::span<const float> extra_m = {},
                                  int steps = 8, float step = 0.25f, int iterations = 4,
                                  bool allow_clipping = false);

// Error of x ~ d * q + m with fixed fp16-representable d, m and optimal per-element q (written to L).
double QuantizeFixedScaleMin(const float* x, const float* w, int n, int nmax, float d, float m, uint8_t* L);

}  // namespace qforge

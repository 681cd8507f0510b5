// The k-quant encoders: one type-independent search (EncodeKBlock, parameterised by KSpec) that chooses a
// super-block's integers to minimise the (importance-)weighted squared reconstruction error exactly as the
// decoder will compute it, plus the per-type row wrappers. Method, per 256-element super-block:
//  A. per sub-block, a continuous fit: for ~20 candidate inverse scales round the levels, then solve the
//     weighted least-squares scale (and min ≤ 0 for affine types) for those levels; keep the best, then
//     re-round against the fit twice (a Lloyd step).
//  B. quantize the sub-block scales (and mins) against one fp16 super-block scale, weighting each by its
//     error sensitivity (Σw·L² for a scale, Σw for a min), trying ~11 candidate super-scales + LSQ refit.
//  C. per sub-block, try the integer sub-scales (and mins) around the target (floor, ceil, previous) and
//     re-round all levels for each, keeping the exact best (decoder arithmetic, fp16-rounded d/dmin).
//  D. refit d (and dmin) by least squares given all integers, round to fp16, repeat C; keep the best.
// Cost is O(n · ~25) per type — the same order as ggml's reference search.
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "k_quants_internal.h"
#include "qforge/core/fp16.h"

// The searches below are sums over short arrays: letting the compiler reassociate them (vectorized
// reductions, fixed order at compile time, so the bytes still do not depend on the thread count) and
// building AVX-512 (x86-64-v4) and AVX2 clones of each hot function (chosen at load time) is most of the
// encoder's speed. No FMA contraction: the AVX2 clone cannot contract (no "fma" in its target), so the
// AVX-512 clone rounds each product the same way and the two differ only in the order of the reductions.
#if defined(__GNUC__) && !defined(__clang__)  // clang has no per-file optimize pragma: it builds as is
#pragma GCC optimize("O3", "associative-math", "no-signed-zeros", "no-trapping-math", "fp-contract=off")
#endif
// Not under ThreadSanitizer: the clones' ifunc resolvers run during relocation, before the TSan runtime is
// initialised, and the instrumented resolver crashes every binary at startup.
#if defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define QF_HOT_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define QF_HOT_CLONES
#endif

namespace qforge::kquant {
namespace {

constexpr float kF16Max = 65504.f;
constexpr int kMaxSubLen = 32;

// Nearest integer (ties to even), clamped to [lo, hi]; NaN gives lo. Safe for any float.
inline int RoundClamp(float v, int lo, int hi) {
  if (!(v > static_cast<float>(lo))) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  const float t = v + 12582912.f;  // 1.5·2^23: the integer lands in the low mantissa bits
  int32_t i;
  std::memcpy(&i, &t, 4);
  return (i & 0x007fffff) - 0x00400000;
}
inline int FloorClamp(float v, int lo, int hi) {
  if (!(v > static_cast<float>(lo))) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(std::floor(v));
}
// fp16 bits of v, saturating at ±65504 (so huge inputs never decode to Inf/NaN); NaN gives 0.
inline uint16_t ToF16(float v) {
  if (std::isnan(v)) return 0;
  if (std::fabs(v) > kF16Max) v = std::copysign(kF16Max, v);
  return F32ToF16(v);
}

// Continuous per-sub-block fit: x ≈ s·L − m, with error sensitivities for step B.
struct SubTarget {
  float s = 0, m = 0;
  double ws = 0, wm = 0;
};

struct Sums {
  double sw = 0, swx = 0, swxx = 0;
};

// Affine fit of levels L to x: returns weighted error, sets s and o (offset ≤ 0; x̂ = s·L + o).
QF_HOT_CLONES double FitAffineLevels(const float* x, const float* w, const int* L, int n, const Sums& t, float* s, float* o) {
  double sl = 0, sll = 0, sxl = 0;
  for (int i = 0; i < n; ++i) {
    sl += w[i] * L[i];
    sll += static_cast<double>(w[i]) * L[i] * L[i];
    sxl += static_cast<double>(w[i]) * x[i] * L[i];
  }
  if (!(sll > 0)) return std::numeric_limits<double>::infinity();
  const double det = sll * t.sw - sl * sl;
  const bool solvable = det > 1e-9 * sll * t.sw;  // not all levels equal
  double ds = solvable ? (t.sw * sxl - t.swx * sl) / det : 0;
  double dof = solvable ? (sll * t.swx - sl * sxl) / det : 1;
  if (dof > 0) {  // the min must subtract: fit the scale alone
    dof = 0;
    ds = sxl / sll;
  }
  if (ds < 0) return std::numeric_limits<double>::infinity();
  *s = static_cast<float>(ds);
  *o = static_cast<float>(dof);
  return t.swxx - 2 * ds * sxl - 2 * dof * t.swx + ds * ds * sll + 2 * ds * dof * sl + dof * dof * t.sw;
}

QF_HOT_CLONES SubTarget FitAffine(const float* x, const float* w, int n, int nq) {
  Sums t;
  float xmin = 0, xmax = x[0];
  for (int i = 0; i < n; ++i) {
    xmin = std::fmin(xmin, x[i]);
    xmax = std::fmax(xmax, x[i]);
    t.sw += w[i];
    t.swx += static_cast<double>(w[i]) * x[i];
    t.swxx += static_cast<double>(w[i]) * x[i] * x[i];
  }
  SubTarget r;
  r.wm = t.sw;
  if (!(xmax > xmin)) {  // constant ≤ 0 (or all zero): the min alone reproduces it
    r.m = -xmin;
    return r;
  }
  int L[kMaxSubLen], best_L[kMaxSubLen] = {};
  double best = std::numeric_limits<double>::infinity();
  float bs = 0, bo = xmin;
  const float range = xmax - xmin;
  int prev_L[kMaxSubLen];
  for (int k = 0; k <= 20; ++k) {
    const float iscale = (static_cast<float>(nq) - 1.0f + 0.1f * static_cast<float>(k)) / range;
    int changed = k == 0;
    for (int i = 0; i < n; ++i) {
      L[i] = RoundClamp((x[i] - xmin) * iscale, 0, nq);
      changed |= L[i] ^ prev_L[i];
      prev_L[i] = L[i];
    }
    // Neighbouring scales often round to the same levels; their fit and error would be the same too.
    if (!changed) continue;
    float s, o;
    const double e = FitAffineLevels(x, w, L, n, t, &s, &o);
    if (e < best) best = e, bs = s, bo = o, std::memcpy(best_L, L, sizeof(int) * n);
  }
  for (int it = 0; it < 2 && bs > 0; ++it) {  // re-round against the fit
    for (int i = 0; i < n; ++i) L[i] = RoundClamp((x[i] - bo) / bs, 0, nq);
    float s, o;
    const double e = FitAffineLevels(x, w, L, n, t, &s, &o);
    if (!(e < best)) break;
    best = e, bs = s, bo = o, std::memcpy(best_L, L, sizeof(int) * n);
  }
  r.s = bs;
  r.m = -bo;
  for (int i = 0; i < n; ++i) r.ws += static_cast<double>(w[i]) * best_L[i] * best_L[i];
  return r;
}

QF_HOT_CLONES SubTarget FitSymmetric(const float* x, const float* w, int n, int lmin, int lmax) {
  float xm = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(xm)) xm = x[i];
  SubTarget r;
  if (!(std::fabs(xm) > 0)) return r;
  int L[kMaxSubLen], best_L[kMaxSubLen] = {};
  double best_gain = -1;  // error = Σw·x² − sxl²/sll: maximise the gain sxl²/sll
  float bs = 0;
  auto try_levels = [&](const int* lv) {
    double sll = 0, sxl = 0;
    for (int i = 0; i < n; ++i) {
      sll += static_cast<double>(w[i]) * lv[i] * lv[i];
      sxl += static_cast<double>(w[i]) * x[i] * lv[i];
    }
    if (!(sll > 0) || !(sxl * sxl / sll > best_gain)) return false;
    best_gain = sxl * sxl / sll, bs = static_cast<float>(sxl / sll);
    std::memcpy(best_L, lv, sizeof(int) * n);
    return true;
  };
  int prev_L[kMaxSubLen];
  for (int end : {lmin, lmax}) {  // map the largest |x| near the negative or the positive end
    for (int k = -4; k <= 4; ++k) {
      const float iscale = (static_cast<float>(end) + 0.2f * static_cast<float>(k)) / xm;
      int changed = k == -4;
      for (int i = 0; i < n; ++i) {
        L[i] = RoundClamp(iscale * x[i], lmin, lmax);
        changed |= L[i] ^ prev_L[i];
        prev_L[i] = L[i];
      }
      if (changed) try_levels(L);  // the same levels as the previous scale would score the same
    }
  }
  for (int it = 0; it < 2 && bs != 0; ++it) {
    for (int i = 0; i < n; ++i) L[i] = RoundClamp(x[i] / bs, lmin, lmax);
    if (!try_levels(L)) break;
  }
  r.s = bs;
  for (int i = 0; i < n; ++i) r.ws += static_cast<double>(w[i]) * best_L[i] * best_L[i];
  return r;
}

// Super-scale d so that v_j ≈ d·l_j with l_j = round(v_j / d) ∈ [lo, hi], minimising Σ wt_j (v_j − d·l_j)².
QF_HOT_CLONES float QuantizeScaleSet(const float* v, const double* wt, int n, int lo, int hi) {
  float vm = 0;
  for (int j = 0; j < n; ++j)
    if (std::fabs(v[j]) > std::fabs(vm)) vm = v[j];
  if (!(std::fabs(vm) > 0)) return 0;
  double best = std::numeric_limits<double>::infinity();
  float best_d = vm / static_cast<float>(hi);
  auto eval = [&](float d) {
    if (!(std::fabs(d) > 0) || !std::isfinite(d)) return;
    double e = 0, svl = 0, sll = 0;
    for (int j = 0; j < n; ++j) {
      const int l = RoundClamp(v[j] / d, lo, hi);
      const double diff = v[j] - static_cast<double>(d) * l;
      e += wt[j] * diff * diff;
      svl += wt[j] * v[j] * l;
      sll += wt[j] * l * l;
    }
    if (e < best) best = e, best_d = d;
    if (sll > 0) {  // least-squares d for these integers
      const float d2 = static_cast<float>(svl / sll);
      double e2 = 0;
      for (int j = 0; j < n; ++j) {
        const double diff = v[j] - static_cast<double>(d2) * RoundClamp(v[j] / d2, lo, hi);
        e2 += wt[j] * diff * diff;
      }
      if (e2 < best) best = e2, best_d = d2;
    }
  };
  for (int end : {lo, hi}) {
    if (end == 0) continue;
    for (int k = -5; k <= 5; ++k) eval(vm / (static_cast<float>(end) + 0.1f * static_cast<float>(k)));
  }
  return best_d;
}

struct Config {
  KValues v;
  double err = std::numeric_limits<double>::infinity();
};

// Step C: given fp16 d/dmin, choose each sub-block's integers among a few candidates, exactly.
QF_HOT_CLONES void ChooseInts(const KSpec& sp, const float* x, const float* w, const SubTarget* tg, const KValues* prev,
                uint16_t d16, uint16_t dmin16, Config* out) {
  const float d = F16ToF32(d16), dmin = sp.affine ? F16ToF32(dmin16) : 0.f;
  out->v.d = d16;
  out->v.dmin = sp.affine ? dmin16 : 0;
  out->err = 0;
  int L[kMaxSubLen];
  for (int j = 0; j < sp.n_sub; ++j) {
    const float* xs = x + j * sp.sub_len;
    const float* ws = w + j * sp.sub_len;
    int cs[3], ncs = 0, cm[3] = {0}, ncm = 1;
    auto add = [](int* c, int& nc, int val) {
      for (int q = 0; q < nc; ++q)
        if (c[q] == val) return;
      c[nc++] = val;
    };
    if (d != 0) {
      const int f = FloorClamp(tg[j].s / d, sp.smin, sp.smax);
      add(cs, ncs, f);
      add(cs, ncs, f < sp.smax ? f + 1 : f);
    }
    if (prev) add(cs, ncs, prev->ls[j]);
    if (ncs == 0) add(cs, ncs, 0);
    if (sp.affine && dmin != 0) {
      ncm = 0;
      const int f = FloorClamp(tg[j].m / dmin, 0, sp.smax);
      add(cm, ncm, f);
      add(cm, ncm, f < sp.smax ? f + 1 : f);
      if (prev) add(cm, ncm, prev->lm[j]);
    }
    double best = std::numeric_limits<double>::infinity();
    for (int a = 0; a < ncs; ++a) {
      for (int b = 0; b < ncm; ++b) {
        const float dl = d * static_cast<float>(cs[a]);
        const float ml = dmin * static_cast<float>(cm[b]);
        const float inv = dl != 0 ? 1.f / dl : 0.f;
        double e = 0;
        for (int i = 0; i < sp.sub_len; ++i) {
          L[i] = RoundClamp((xs[i] + ml) * inv, sp.lmin, sp.lmax);
          const float p = dl * static_cast<float>(L[i]);
          const float xh = p - ml;
          const double diff = static_cast<double>(xs[i]) - xh;
          e += ws[i] * diff * diff;
        }
        if (e < best) {
          best = e;
          out->v.ls[j] = cs[a];
          out->v.lm[j] = cm[b];
          for (int i = 0; i < sp.sub_len; ++i) out->v.L[j * sp.sub_len + i] = static_cast<int8_t>(L[i]);
        }
      }
    }
    out->err += best;
  }
}

// Step D: least-squares d (and dmin ≥ 0) for fixed integers. Returns false if degenerate.
QF_HOT_CLONES bool RefitSuper(const KSpec& sp, const float* x, const float* w, const KValues& v, float* d, float* dmin) {
  double saa = 0, sab = 0, sbb = 0, sax = 0, sbx = 0;
  for (int j = 0; j < sp.n_sub; ++j) {  // per sub-block: no index division per element
    const double ls = v.ls[j], b = sp.affine ? v.lm[j] : 0;
    for (int e = j * sp.sub_len; e < (j + 1) * sp.sub_len; ++e) {
      const double a = ls * v.L[e];
      saa += w[e] * a * a, sab += w[e] * a * b, sbb += w[e] * b * b;
      sax += w[e] * a * x[e], sbx += w[e] * b * x[e];
    }
  }
  if (!(saa > 0)) return false;
  // x ≈ d·a − dmin·b: normal equations in (d, u = −dmin).
  const double det = saa * sbb - sab * sab;
  double dd = sax / saa, dm = 0;
  if (sp.affine && det > 1e-12 * saa * sbb) {
    dd = (sbb * sax - sab * sbx) / det;
    dm = -(saa * sbx - sab * sax) / det;
    if (dm < 0) dd = sax / saa, dm = 0;
  }
  *d = static_cast<float>(dd);
  *dmin = static_cast<float>(dm);
  return std::isfinite(*d) && std::isfinite(*dmin);
}

}  // namespace

void EncodeKBlock(const KSpec& sp, const float* x, const float* w, KValues* out) {
  SubTarget tg[16];
  float s[16] = {}, m[16] = {};
  double ws[16] = {}, wm[16] = {};
  for (int j = 0; j < sp.n_sub; ++j) {
    const float* xs = x + j * sp.sub_len;
    const float* wsub = w + j * sp.sub_len;
    tg[j] = sp.affine ? FitAffine(xs, wsub, sp.sub_len, sp.lmax) : FitSymmetric(xs, wsub, sp.sub_len, sp.lmin, sp.lmax);
    s[j] = tg[j].s, m[j] = tg[j].m, ws[j] = tg[j].ws, wm[j] = tg[j].wm;
  }
  const float d0 = QuantizeScaleSet(s, ws, sp.n_sub, sp.smin, sp.smax);
  const float m0 = sp.affine ? QuantizeScaleSet(m, wm, sp.n_sub, 0, sp.smax) : 0.f;
  Config best, cur;
  ChooseInts(sp, x, w, tg, nullptr, ToF16(d0), ToF16(m0), &best);
  for (int it = 0; it < 3; ++it) {
    float d, dmin;
    if (!RefitSuper(sp, x, w, best.v, &d, &dmin)) break;
    const uint16_t d16 = ToF16(d), m16 = sp.affine ? ToF16(dmin) : 0;
    if (d16 == best.v.d && m16 == best.v.dmin) break;
    ChooseInts(sp, x, w, tg, &best.v, d16, m16, &cur);
    if (!(cur.err < best.err)) break;
    best = cur;
  }
  *out = best.v;
}

namespace {

// Per-element weights for one super-block: 1 without importance; otherwise the importance (negative or
// NaN treated as 0) plus 1e-6 of its mean, so all-zero sub-blocks stay well-posed without changing the
// objective measurably. A super-block with no positive importance falls back to unit weights.
void BlockWeights(const float* importance, float* w) {
  if (!importance) {
    for (int i = 0; i < kKSuper; ++i) w[i] = 1.f;
    return;
  }
  double sum = 0;
  for (int i = 0; i < kKSuper; ++i) {
    w[i] = importance[i] > 0 ? importance[i] : 0.f;  // NaN compares false
    if (!std::isfinite(w[i])) w[i] = 0;
    sum += w[i];
  }
  if (!(sum > 0)) {
    for (int i = 0; i < kKSuper; ++i) w[i] = 1.f;
    return;
  }
  const float eps = static_cast<float>(1e-6 * sum / kKSuper);
  for (int i = 0; i < kKSuper; ++i) w[i] += eps;
}

template <typename Block, void (*Pack)(const KValues&, Block*)>
void EncodeRow(const KSpec& sp, const float* x, uint8_t* out, int64_t n, const float* importance) {
  float w[kKSuper];
  for (int64_t i = 0; i < n / kKSuper; ++i) {
    BlockWeights(importance ? importance + i * kKSuper : nullptr, w);
    KValues v;
    EncodeKBlock(sp, x + i * kKSuper, w, &v);
    Block b{};
    Pack(v, &b);
    std::memcpy(out + i * sizeof(Block), &b, sizeof(Block));
  }
}

}  // namespace

void EncodeRowQ2K(const float* x, uint8_t* out, int64_t n, const float* imp) {
  EncodeRow<block_q2_K, PackQ2K>(kSpecQ2K, x, out, n, imp);
}
void EncodeRowQ3K(const float* x, uint8_t* out, int64_t n, const float* imp) {
  EncodeRow<block_q3_K, PackQ3K>(kSpecQ3K, x, out, n, imp);
}
void EncodeRowQ4K(const float* x, uint8_t* out, int64_t n, const float* imp) {
  EncodeRow<block_q4_K, PackQ4K>(kSpecQ4K, x, out, n, imp);
}
void EncodeRowQ5K(const float* x, uint8_t* out, int64_t n, const float* imp) {
  EncodeRow<block_q5_K, PackQ5K>(kSpecQ5K, x, out, n, imp);
}
void EncodeRowQ6K(const float* x, uint8_t* out, int64_t n, const float* imp) {
  EncodeRow<block_q6_K, PackQ6K>(kSpecQ6K, x, out, n, imp);
}

}  // namespace qforge::kquant

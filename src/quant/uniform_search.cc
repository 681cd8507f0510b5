// See uniform_search.h; the AVX-512 row search is in uniform_search_avx512.cc. The AVX2 and portable
// evaluators do the same float operations in the same order per lane (division, round-to-nearest-even,
// neighbour check, per-lane sums added in a fixed order), so both choose the same scale (legacy_quants_test:
// UniformSearch.SimdAndPortableEvaluatorsChooseTheSameBlocks).
#include "uniform_search.h"

#include "qforge/core/cpu_features.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "qforge/quant/quant_search.h"

namespace qforge {
namespace {

struct Eval {
  float err = 0;    // Σ (x - d·l)²
  float sumlx = 0;  // Σ l·x  (least-squares refit numerator)
  float suml2 = 0;  // Σ l²
  bool clips = false;
};

float Lanes(const float* v) {  // fixed order, shared by both evaluators
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

Eval EvalPortable(const float* x, float qmin, float qmax, float d, uint8_t* L) {
  float err[8] = {}, lx[8] = {}, l2[8] = {};
  bool clips = false;
  for (int k = 0; k < 4; ++k) {
    for (int lane = 0; lane < 8; ++lane) {
      const int j = 8 * k + lane;
      const float t = x[j] / d;
      clips |= !(t >= qmin - 0.5f && t <= qmax + 0.5f);
      const float r = std::nearbyint(std::min(std::max(t, qmin), qmax));
      const float rm = std::max(r - 1.0f, qmin), rp = std::min(r + 1.0f, qmax);
      float l = r, e = x[j] - r * d;
      const float em = x[j] - rm * d, ep = x[j] - rp * d;
      if (std::fabs(em) < std::fabs(e)) l = rm, e = em;
      if (std::fabs(ep) < std::fabs(e)) l = rp, e = ep;
      err[lane] += e * e;
      lx[lane] += l * x[j];
      l2[lane] += l * l;
      L[j] = static_cast<uint8_t>(static_cast<int>(l - qmin));
    }
  }
  return {Lanes(err), Lanes(lx), Lanes(l2), clips};
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) Eval EvalAvx2(const float* x, float qmin, float qmax, float d, uint8_t* L) {
  const __m256 vd = _mm256_set1_ps(d), lo = _mm256_set1_ps(qmin), hi = _mm256_set1_ps(qmax);
  const __m256 lo_h = _mm256_set1_ps(qmin - 0.5f), hi_h = _mm256_set1_ps(qmax + 0.5f);
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  __m256 err = _mm256_setzero_ps(), lx = _mm256_setzero_ps(), l2 = _mm256_setzero_ps();
  __m256 inside = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  alignas(32) int32_t li[32];
  for (int k = 0; k < 4; ++k) {
    const __m256 xv = _mm256_loadu_ps(x + 8 * k);
    const __m256 t = _mm256_div_ps(xv, vd);
    inside = _mm256_and_ps(inside, _mm256_and_ps(_mm256_cmp_ps(t, lo_h, _CMP_GE_OQ), _mm256_cmp_ps(t, hi_h, _CMP_LE_OQ)));
    // min/max with t first: matches std::min(std::max(t, lo), hi) for every finite t.
    const __m256 c = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
    const __m256 r = _mm256_round_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 rm = _mm256_max_ps(_mm256_sub_ps(r, one), lo), rp = _mm256_min_ps(_mm256_add_ps(r, one), hi);
    __m256 l = r, e = _mm256_sub_ps(xv, _mm256_mul_ps(r, vd));
    const __m256 em = _mm256_sub_ps(xv, _mm256_mul_ps(rm, vd)), ep = _mm256_sub_ps(xv, _mm256_mul_ps(rp, vd));
    __m256 better = _mm256_cmp_ps(_mm256_andnot_ps(sign, em), _mm256_andnot_ps(sign, e), _CMP_LT_OQ);
    l = _mm256_blendv_ps(l, rm, better);
    e = _mm256_blendv_ps(e, em, better);
    better = _mm256_cmp_ps(_mm256_andnot_ps(sign, ep), _mm256_andnot_ps(sign, e), _CMP_LT_OQ);
    l = _mm256_blendv_ps(l, rp, better);
    e = _mm256_blendv_ps(e, ep, better);
    err = _mm256_add_ps(err, _mm256_mul_ps(e, e));
    lx = _mm256_add_ps(lx, _mm256_mul_ps(l, xv));
    l2 = _mm256_add_ps(l2, _mm256_mul_ps(l, l));
    _mm256_store_si256(reinterpret_cast<__m256i*>(li + 8 * k), _mm256_cvtps_epi32(_mm256_sub_ps(l, lo)));
  }
  for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>(li[j]);
  alignas(32) float a[8], b[8], c[8];
  _mm256_store_ps(a, err);
  _mm256_store_ps(b, lx);
  _mm256_store_ps(c, l2);
  return {Lanes(a), Lanes(b), Lanes(c), _mm256_movemask_ps(inside) != 0xff};
}

// The fast path's evaluator: multiplies by the reciprocal instead of dividing and skips the neighbour check.
// Both are safe exactly when every element lies well inside its level's half-step (|e| <= 0.4999·|d|): then
// the chosen level is the unique one within half a step, the one the exact evaluator also keeps (its
// float error is ~1e-6·|d|, far below the 1e-4·|d| margin), and e, err, Σl·x and Σl² are computed by the
// same operations in the same order. If some element is nearer a midpoint, returns false and the caller
// runs the exact evaluator. Only for candidates known not to clip.
__attribute__((target("avx2"))) bool EvalAvx2Fast(const float* x, float qmin, float qmax, float d, float inv_d,
                                                  uint8_t* L, Eval* out) {
  const __m256 vd = _mm256_set1_ps(d), vinv = _mm256_set1_ps(inv_d);
  const __m256 lo = _mm256_set1_ps(qmin), hi = _mm256_set1_ps(qmax);
  const __m256 sign = _mm256_set1_ps(-0.0f), margin = _mm256_set1_ps(0.4999f * std::fabs(d));
  __m256 err = _mm256_setzero_ps(), lx = _mm256_setzero_ps(), l2 = _mm256_setzero_ps();
  __m256 near_midpoint = _mm256_setzero_ps();
  __m256i li[4];
  for (int k = 0; k < 4; ++k) {
    const __m256 xv = _mm256_loadu_ps(x + 8 * k);
    const __m256 c = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(xv, vinv), lo), hi);
    const __m256 l = _mm256_round_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 e = _mm256_sub_ps(xv, _mm256_mul_ps(l, vd));
    near_midpoint = _mm256_or_ps(near_midpoint, _mm256_cmp_ps(_mm256_andnot_ps(sign, e), margin, _CMP_GT_OQ));
    err = _mm256_add_ps(err, _mm256_mul_ps(e, e));
    lx = _mm256_add_ps(lx, _mm256_mul_ps(l, xv));
    l2 = _mm256_add_ps(l2, _mm256_mul_ps(l, l));
    li[k] = _mm256_cvtps_epi32(_mm256_sub_ps(l, lo));
  }
  if (_mm256_movemask_ps(near_midpoint) != 0) return false;
  // 32 levels in 0..255 to bytes: pack to 16 then 8 bits (the packs interleave 128-bit lanes; permute back).
  const __m256i w01 = _mm256_packus_epi32(li[0], li[1]), w23 = _mm256_packus_epi32(li[2], li[3]);
  const __m256i b = _mm256_packus_epi16(w01, w23);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(L),
                      _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  // Lanes() of the three sums in registers, same additions in the same order: two horizontal adds give
  // (v0+v1)+(v2+v3) in the low half and (v4+v5)+(v6+v7) in the high half, then the halves are added.
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(err, lx), _mm256_hadd_ps(l2, l2));
  const __m128 sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  alignas(16) float r[4];
  _mm_store_ps(r, sums);
  *out = {r[0], r[1], r[2], false};
  return true;
}

// StoredF16 (quant_search.h) with the F16C instructions: same clamp and NaN rule, and the hardware's
// round-to-nearest-even conversion is the one the software F32ToF16 implements (core/fp16_test).
__attribute__((target("avx2,f16c"))) inline float StoredF16F16c(float v) {
  if (std::isnan(v)) return 0.0f;
  v = std::clamp(v, -65504.0f, 65504.0f);
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(v), _MM_FROUND_TO_NEAREST_INT)));
}
#endif

using EvalFn = Eval (*)(const float*, float, float, float, uint8_t*);

// The search as specified: every candidate scored by `eval` (clip test per element), the best non-clipping
// one kept, or the best overall when all clip. x is finite, max its signed element of largest magnitude.
float SearchReference(const float* x, int qmin_i, int qmax_i, float ref_d, int steps, float amax, float max,
                      EvalFn eval, uint8_t* L) {
  const float qmin = static_cast<float>(qmin_i), qmax = static_cast<float>(qmax_i);
  const uint8_t zero_index = static_cast<uint8_t>(std::clamp(0, qmin_i, qmax_i) - qmin_i);
  std::memset(L, zero_index, 32);
  if (amax == 0) return 0.0f;

  constexpr float kInf = std::numeric_limits<float>::infinity();
  float best_err = kInf, best_d = 0, any_err = kInf, any_d = 0;
  uint8_t trial[32], any_L[32];
  // d = 0: every level at the one nearest 0; it clips unless the block is all zero (handled above).
  {
    float e = 0;
    for (int j = 0; j < 32; ++j) e += x[j] * x[j];
    any_err = e;
    std::memset(any_L, zero_index, 32);
  }
  // Different rules often propose the same fp16 scale (Q8_0: max/127 and ggml's amax/127): score it once.
  float tried[16];
  int n_tried = 0;
  auto consider = [&](float d_raw) -> Eval {
    const float d = StoredF16(d_raw);
    if (d == 0) return {};
    for (int i = 0; i < n_tried; ++i)
      if (tried[i] == d) return {};
    if (n_tried < 16) tried[n_tried++] = d;
    Eval ev = eval(x, qmin, qmax, d, trial);
    if (ev.err < any_err) any_err = ev.err, any_d = d, std::memcpy(any_L, trial, 32);
    if (!ev.clips && ev.err < best_err) best_err = ev.err, best_d = d, std::memcpy(L, trial, 32);
    return ev;
  };
  // A clipping scale is not eligible, and its refit (fitted to clipped levels) almost always clips too:
  // only eligible scales are refined.
  auto consider_with_refit = [&](float d_raw) {
    const Eval ev = consider(d_raw);
    if (!ev.clips && ev.suml2 > 0) consider(ev.sumlx / ev.suml2);
  };
  for (float target : {qmin, qmax}) {
    for (int k = -steps; k <= steps; ++k) {  // steps < 0: no end-mapped candidates at all
      const float inv = (target + static_cast<float>(k) * 0.1f) / max;
      if (inv != 0 && std::isfinite(inv)) consider_with_refit(1.0f / inv);
    }
  }
  consider_with_refit(ref_d);
  if (best_err == kInf) {  // every candidate clips (scale saturated at the fp16 maximum): best overall
    std::memcpy(L, any_L, 32);
    return any_d;
  }
  return best_d;
}

#if defined(__x86_64__)
// SearchReference's result by a cheaper route: the same candidates in the same order, but a clipping
// candidate is recognised from the block's two extremes alone (x / d is monotonic in x, so the per-element
// test fails iff it fails at the minimum or the maximum) and skipped, the others scored by EvalAvx2Fast
// (EvalAvx2 when it declines). Only the best non-clipping candidate counts, so skipping the clipping ones
// changes nothing unless all clip; then the reference search runs instead.
struct FastSearch {
  const float* x;
  float qmin, qmax, lo_h, hi_h, xlo, xhi;
  uint8_t* L;
  float best_err = std::numeric_limits<float>::infinity(), best_d = 0;
  float tried[16] = {};
  int n_tried = 0;
  uint8_t trial[32] = {};

  // d: a stored (fp16-representable) scale, inv_d = 1 / d, clips: its clip test (see above).
  __attribute__((target("avx2,f16c"))) Eval Score(float d, float inv_d, bool clips) {
    if (d == 0) return {};
    for (int i = 0; i < n_tried; ++i)
      if (tried[i] == d) return {};
    // The reference remembers only the first 16 scales (a repeat after that is scored again and refitted):
    // the same limit keeps the choices identical.
    if (n_tried < 16) tried[n_tried++] = d;
    if (clips) return {0, 0, 0, true};
    Eval ev;
    if (!EvalAvx2Fast(x, qmin, qmax, d, inv_d, trial, &ev)) ev = EvalAvx2(x, qmin, qmax, d, trial);
    if (ev.err < best_err) best_err = ev.err, best_d = d, std::memcpy(L, trial, 32);
    return ev;
  }
  __attribute__((target("avx2,f16c"))) bool Clips(float d) const {
    const float tlo = xlo / d, thi = xhi / d;
    return !(tlo >= lo_h && tlo <= hi_h && thi >= lo_h && thi <= hi_h);
  }
  // A proposed scale followed by its least-squares refit (only for a scale that does not clip).
  __attribute__((target("avx2,f16c"))) void ScoreWithRefit(float d, float inv_d, bool clips) {
    const Eval ev = Score(d, inv_d, clips);
    if (ev.clips || !(ev.suml2 > 0)) return;
    const float r = StoredF16F16c(ev.sumlx / ev.suml2);
    if (r != 0) Score(r, 1.0f / r, Clips(r));
  }
};

// The end-mapped proposals of one block, prepared 8 at a time: scale, fp16 rounding, reciprocal and clip
// test are independent across proposals, so they need not wait for each other's scoring.
struct Proposals {
  alignas(32) float d[24], inv_d[24], clips[24];
  alignas(32) int valid[24];
  int n = 0;
};

__attribute__((target("avx2,f16c"))) void Propose(float qmin, float qmax, int steps, float max, float xlo, float xhi,
                                                 float lo_h, float hi_h, Proposals* p) {
  alignas(32) float raw[24] = {};
  for (float target : {qmin, qmax}) {
    for (int k = -steps; k <= steps; ++k) {
      const float inv = (target + static_cast<float>(k) * 0.1f) / max;
      const bool ok = inv != 0 && std::isfinite(inv);
      p->valid[p->n] = ok;
      raw[p->n] = ok ? inv : 1.0f;
      ++p->n;
    }
  }
  const __m256 one = _mm256_set1_ps(1.0f), lim = _mm256_set1_ps(65504.0f), neg_lim = _mm256_set1_ps(-65504.0f);
  const __m256 vlo = _mm256_set1_ps(xlo), vhi = _mm256_set1_ps(xhi);
  const __m256 lo = _mm256_set1_ps(lo_h), hi = _mm256_set1_ps(hi_h);
  for (int i = 0; i < p->n; i += 8) {
    // StoredF16F16c per lane: 1 / inv is never NaN here; clamp, then round through fp16.
    const __m256 dr = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(one, _mm256_load_ps(raw + i)), neg_lim), lim);
    const __m256 d = _mm256_cvtph_ps(_mm256_cvtps_ph(dr, _MM_FROUND_TO_NEAREST_INT));
    const __m256 tlo = _mm256_div_ps(vlo, d), thi = _mm256_div_ps(vhi, d);
    const __m256 inside = _mm256_and_ps(_mm256_and_ps(_mm256_cmp_ps(tlo, lo, _CMP_GE_OQ), _mm256_cmp_ps(tlo, hi, _CMP_LE_OQ)),
                                        _mm256_and_ps(_mm256_cmp_ps(thi, lo, _CMP_GE_OQ), _mm256_cmp_ps(thi, hi, _CMP_LE_OQ)));
    _mm256_store_ps(p->d + i, d);
    _mm256_store_ps(p->inv_d + i, _mm256_div_ps(one, d));
    _mm256_store_ps(p->clips + i, _mm256_andnot_ps(inside, _mm256_castsi256_ps(_mm256_set1_epi32(-1))));
  }
}

__attribute__((target("avx2,f16c"))) float SearchFastAvx2(const float* x, int qmin_i, int qmax_i, float ref_d,
                                                          int steps, float amax, float max, float xlo, float xhi,
                                                          uint8_t* L) {
  if (amax == 0 || steps > 5) return SearchReference(x, qmin_i, qmax_i, ref_d, steps, amax, max, EvalAvx2, L);
  FastSearch s{x, static_cast<float>(qmin_i), static_cast<float>(qmax_i), 0, 0, xlo, xhi, L};
  s.lo_h = s.qmin - 0.5f, s.hi_h = s.qmax + 0.5f;
  Proposals p;
  Propose(s.qmin, s.qmax, steps, max, xlo, xhi, s.lo_h, s.hi_h, &p);
  for (int i = 0; i < p.n; ++i) {
    uint32_t clip_bits;
    std::memcpy(&clip_bits, &p.clips[i], 4);
    if (p.valid[i]) s.ScoreWithRefit(p.d[i], p.inv_d[i], clip_bits != 0);
  }
  const float d_ref = StoredF16F16c(ref_d);
  if (d_ref != 0) s.ScoreWithRefit(d_ref, 1.0f / d_ref, s.Clips(d_ref));
  if (s.best_err == std::numeric_limits<float>::infinity())
    return SearchReference(x, qmin_i, qmax_i, ref_d, steps, amax, max, EvalAvx2, L);
  return s.best_d;
}

// The block's largest magnitude and the first element that has it (what the scalar scan finds), its
// minimum and maximum; false if some element is NaN (the scalar scan then decides, as before).
__attribute__((target("avx2"))) bool ScanBlockAvx2(const float* x, float* amax, float* max, float* xlo, float* xhi) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 a = _mm256_setzero_ps(), lo = _mm256_loadu_ps(x), hi = lo, nan = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    const __m256 v = _mm256_loadu_ps(x + 8 * k);
    a = _mm256_max_ps(_mm256_andnot_ps(sign, v), a);
    lo = _mm256_min_ps(v, lo);
    hi = _mm256_max_ps(v, hi);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  if (_mm256_movemask_ps(nan) != 0) return false;
  alignas(32) float av[8], lv[8], hv[8];
  _mm256_store_ps(av, a);
  _mm256_store_ps(lv, lo);
  _mm256_store_ps(hv, hi);
  float m = av[0], l = lv[0], h = hv[0];
  for (int i = 1; i < 8; ++i) m = std::max(m, av[i]), l = std::min(l, lv[i]), h = std::max(h, hv[i]);
  *amax = m, *xlo = l, *xhi = h, *max = 0;
  if (m == 0) return true;
  const __m256 vm = _mm256_set1_ps(m);
  for (int k = 0; k < 4; ++k) {
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), vm, _CMP_EQ_OQ));
    if (hit) {
      *max = x[8 * k + __builtin_ctz(static_cast<unsigned>(hit))];
      break;
    }
  }
  return true;
}
#endif

bool SimdAvailable() {
#if defined(__x86_64__)
  return CpuHasAvx2Fma();
#else
  return false;
#endif
}

std::atomic<UniformSearchPath>& ForcedPath() {
  static std::atomic<UniformSearchPath> path{UniformSearchPath::kAuto};
  return path;
}

bool ForcePortable() { return ForcedPath().load(std::memory_order_relaxed) == UniformSearchPath::kPortable; }

}  // namespace

void UseUniformSearchPathForTesting(UniformSearchPath path) { ForcedPath() = path; }
bool UniformSearchHasSimdPath() { return SimdAvailable(); }
bool UniformSearchHasAvx512Path() {
#if defined(__x86_64__)
  return CpuHasAvx512Vnni();
#else
  return false;
#endif
}

float SymmetricReferenceScale(const float* x, int qmin, int qmax, SymmetricReference ref) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
  return ref == SymmetricReference::kSignedMaxOverQmin ? max / static_cast<float>(qmin)
                                                      : std::fabs(max) / static_cast<float>(qmax);
}

void SearchSymmetricUnweightedRow(const float* x, int64_t n_blocks, int qmin, int qmax, int steps,
                                  SymmetricReference ref, float* d_out, uint8_t* L_out) {
  static const bool avx512 = UniformSearchHasAvx512Path();
  if (avx512 && ForcedPath().load(std::memory_order_relaxed) == UniformSearchPath::kAuto) {
    SearchSymmetricUnweightedRowAvx512(x, n_blocks, qmin, qmax, steps, ref, d_out, L_out);
    return;
  }
  for (int64_t i = 0; i < n_blocks; ++i, x += 32)
    d_out[i] = SearchSymmetricUnweighted32(x, qmin, qmax, SymmetricReferenceScale(x, qmin, qmax, ref), steps,
                                           L_out + 32 * i);
}

float SearchSymmetricUnweighted32(const float* x, int qmin_i, int qmax_i, float ref_d, int steps, uint8_t* L) {
  static const bool simd = SimdAvailable();
#if defined(__x86_64__)
  float amax_v, max_v, xlo, xhi;
  if (simd && !ForcePortable() && ScanBlockAvx2(x, &amax_v, &max_v, &xlo, &xhi) && std::isfinite(amax_v))
    return SearchFastAvx2(x, qmin_i, qmax_i, ref_d, steps, amax_v, max_v, xlo, xhi, L);
#endif
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j) {
    const float a = std::fabs(x[j]);
    if (a > amax) amax = a, max = x[j];
  }
  if (!std::isfinite(amax)) {  // not this path's contract: the general search copes with anything
    ScaleSearchOptions opt;
    opt.steps = steps;
    const float extra[1] = {ref_d};
    opt.extra_scales = extra;
    return SearchScale(x, nullptr, 32, QuantGrid::Uniform(qmin_i, qmax_i), L, opt).d;
  }
  EvalFn eval = EvalPortable;
#if defined(__x86_64__)
  if (simd && !ForcePortable()) eval = EvalAvx2;  // a block with NaN
#endif
  return SearchReference(x, qmin_i, qmax_i, ref_d, steps, amax, max, eval, L);
}

}  // namespace qforge

// See uniform_search.h. The AVX2 and portable evaluators do the same float operations in the same order
// per lane (division, round-to-nearest-even, neighbour check, per-lane sums added in a fixed order), so
// both choose the same scale (legacy_quants_test: UniformSearch.SimdAndPortableEvaluatorsChooseTheSameBlocks).
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
#endif

using EvalFn = Eval (*)(const float*, float, float, float, uint8_t*);

EvalFn PickEval() {
#if defined(__x86_64__)
  if (CpuHasAvx2Fma()) return EvalAvx2;
#endif
  return EvalPortable;
}

std::atomic<EvalFn>& ActiveEval() {
  static std::atomic<EvalFn> fn{PickEval()};
  return fn;
}

}  // namespace

void UseUniformSearchPortableForTesting(bool portable) { ActiveEval() = portable ? EvalPortable : PickEval(); }
bool UniformSearchHasSimdPath() { return PickEval() != EvalPortable; }

float SearchSymmetricUnweighted32(const float* x, int qmin_i, int qmax_i, float ref_d, int steps, uint8_t* L) {
  const EvalFn eval = ActiveEval().load(std::memory_order_relaxed);
  const float qmin = static_cast<float>(qmin_i), qmax = static_cast<float>(qmax_i);
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

}  // namespace qforge

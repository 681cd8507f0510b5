#include "silu.h"

#include <cmath>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "qforge/core/cpu_features.h"

namespace qforge {
namespace {

#if defined(__x86_64__)
#define QF_SILU_AVX512 __attribute__((target("avx512f")))

// exp(x) for 16 lanes: x = n ln2 + r with n = round(x / ln2) and ln2 split in two (Cody-Waite: n * kLn2Hi is
// exact, so r carries no cancellation error), exp(r) on |r| <= ln2 / 2 by Cephes' degree-7 minimax polynomial
// for expf (relative error ~1e-7 there), then times 2^n by vscalefps, which also yields inf past ~88.7 and
// (sub)normal results down to 0 below ~-87.3. x is clamped first so that -inf gives 0, not a NaN from inf - inf.
QF_SILU_AVX512 inline __m512 Exp16(__m512 x) {
  const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
  const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
  r = _mm512_fnmadd_ps(n, ln2_lo, r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

QF_SILU_AVX512 void SiluTimesAvx512(float* g, const float* u, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(m, g + i);
    const __m512 e = Exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
    const __m512 s = _mm512_div_ps(x, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
  }
}
#endif

}  // namespace

void SiluTimesScalar(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void SiluTimes(float* g, const float* u, int64_t n) {
#if defined(__x86_64__)
  static const bool avx512 = CpuHasAvx512Vnni();
  if (avx512) return SiluTimesAvx512(g, u, n);
#endif
  SiluTimesScalar(g, u, n);
}

}  // namespace qforge

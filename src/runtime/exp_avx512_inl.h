// exp(x) on 16 float lanes for the runtime's AVX-512 paths (SwiGLU's SiLU, attention's softmax): one polynomial
// in place of a libm call per element, which made each of them a large share of its step.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

namespace qforge {

// x = n ln2 + r with n = round(x / ln2) and ln2 split in two (Cody-Waite: n * kLn2Hi is exact, so r carries no
// cancellation error), exp(r) on |r| <= ln2 / 2 by Cephes' degree-7 minimax polynomial for expf (relative error
// ~1e-7 there), then times 2^n by vscalefps, which also yields inf past ~88.7 and (sub)normal results down to 0
// below ~-87.3. x is clamped first so that -inf gives 0, not a NaN from inf - inf.
__attribute__((target("avx512f"))) inline __m512 Exp16(__m512 x) {
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

}  // namespace qforge
#endif

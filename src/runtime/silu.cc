#include "silu.h"

#include <cmath>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "simd_exp_inl.h"
#include "qforge/core/cpu_features.h"

// GCC 12 reports its own _mm512_undefined_*() merge operands as uninitialized (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace qforge {
namespace {

#if defined(__x86_64__)
#define QF_SILU_AVX512 __attribute__((target("avx512f")))

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

// The SwiGLU step of the feed-forward block, g[i] = SiLU(g[i]) * u[i] with SiLU(x) = x / (1 + exp(-x)), on a
// whole row: with AVX-512 sixteen lanes at a time with a polynomial exp (within a few float ulps of the exact
// value), else with std::exp. One exp per element of n_ff per token made the scalar loop ~6% of a prefill.
#pragma once

#include <cstdint>

namespace qforge {

void SiluTimes(float* g, const float* u, int64_t n);

// The scalar reference (std::exp), for tests.
void SiluTimesScalar(float* g, const float* u, int64_t n);

}  // namespace qforge

// SiluTimes (the dispatched row version, AVX-512 with a polynomial exp where available) against the std::exp
// reference: within a few float ulps everywhere, including the tails where exp under- or overflows, and the
// special values.
#include "silu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace qforge {
namespace {

TEST(Silu, RowMatchesTheStdExpReferenceWithinFourUlps) {
  std::vector<float> x;
  for (float v = -120.0f; v <= 120.0f; v += 0.0137f) x.push_back(v);
  for (float v = -1e-3f; v <= 1e-3f; v += 1.3e-6f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 88.5f, 88.8f, 89.5f, -87.0f, -88.0f, -104.5f, 1e30f, -1e30f,
                  std::numeric_limits<float>::max(), -std::numeric_limits<float>::max()})
    x.push_back(v);
  x.resize(x.size() + 5, 1.5f);  // a masked tail
  std::vector<float> u(x.size());
  for (size_t i = 0; i < u.size(); ++i) u[i] = 0.5f + static_cast<float>(i % 7) * 0.25f;
  std::vector<float> got = x, want = x;
  SiluTimes(got.data(), u.data(), static_cast<int64_t>(got.size()));
  SiluTimesScalar(want.data(), u.data(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double tol = 4 * std::ldexp(std::fabs(static_cast<double>(want[i])), -23) + 1e-37;
    ASSERT_NEAR(got[i], want[i], tol) << "x = " << x[i];
  }
}

// Infinities and NaN give what the formula gives with std::exp: inf at +inf, and NaN at -inf (-inf / inf) as
// for NaN (the runtime never feeds them: they would already have poisoned the matrix products).
TEST(Silu, SpecialValuesAsTheReference) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {inf, -inf, std::numeric_limits<float>::quiet_NaN(), 0.0f, -1e30f};
  std::vector<float> u(x.size(), 1.0f);
  std::vector<float> want = x;
  SiluTimes(x.data(), u.data(), static_cast<int64_t>(x.size()));
  SiluTimesScalar(want.data(), u.data(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(x[i])) << i;
    } else {
      EXPECT_EQ(x[i], want[i]) << i;
    }
  }
  EXPECT_EQ(x[0], inf);
  EXPECT_EQ(x[4], 0.0f);
}

}  // namespace
}  // namespace qforge

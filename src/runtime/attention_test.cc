// Every SIMD attention path this CPU can run (and the dispatched AttendKvHead) against the scalar reference, and
// all of them against a plain double-precision softmax attention written out here.
#include "attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "qforge/core/fp16.h"

namespace qforge {
namespace {

struct Case {
  int head_dim, group, n_pos;
  float scale;
};

struct Data {
  std::vector<float> q;
  std::vector<uint16_t> k, v;
  size_t stride;
};

// Keys and values of one KV head inside a wider cache row (stride > head_dim, at an offset), as in the runtime.
Data MakeData(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Data d;
  d.stride = static_cast<size_t>(3 * c.head_dim + 8);
  d.q.resize(static_cast<size_t>(c.group) * c.head_dim);
  for (float& x : d.q) x = u(rng);
  d.k.resize(d.stride * c.n_pos);
  d.v.resize(d.stride * c.n_pos);
  for (auto& x : d.k) x = F32ToF16(u(rng));
  for (auto& x : d.v) x = F32ToF16(u(rng));
  return d;
}

KvHeadAttention Args(const Case& c, const Data& d, float* out) {
  const size_t offset = static_cast<size_t>(c.head_dim);  // the second head of the row
  return {d.q.data(), d.k.data() + offset, d.v.data() + offset, d.stride, c.head_dim, c.group, c.n_pos, c.scale, out};
}

std::vector<float> Attend(AttendFn fn, const Case& c, const Data& d) {
  std::vector<float> out(static_cast<size_t>(c.group) * c.head_dim, std::nanf(""));
  std::vector<float> scratch(AttentionScratchFloats(c.group, c.head_dim, c.n_pos), std::nanf(""));
  fn(Args(c, d, out.data()), scratch.data());
  return out;
}

// Softmax attention in double, with no F16 rounding of the query or the weights.
std::vector<double> Naive(const Case& c, const Data& d) {
  const size_t hd = static_cast<size_t>(c.head_dim), offset = hd;
  std::vector<double> out(c.group * hd, 0.0);
  for (int g = 0; g < c.group; ++g) {
    std::vector<double> s(c.n_pos);
    for (int p = 0; p < c.n_pos; ++p) {
      double dot = 0;
      for (size_t i = 0; i < hd; ++i) dot += static_cast<double>(d.q[g * hd + i]) * F16ToF32(d.k[p * d.stride + offset + i]);
      s[p] = dot * c.scale;
    }
    const double max = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (double& x : s) sum += (x = std::exp(x - max));
    for (int p = 0; p < c.n_pos; ++p)
      for (size_t i = 0; i < hd; ++i) out[g * hd + i] += s[p] / sum * F16ToF32(d.v[p * d.stride + offset + i]);
  }
  return out;
}

// The scalar reference and every SIMD path this CPU has for the head size.
std::vector<AttendFn> Paths(int head_dim) {
  std::vector<AttendFn> paths = {AttendKvHeadScalar};
  for (AttentionIsa isa : {AttentionIsa::kAvx2, AttentionIsa::kAvx512})
    if (AttendFn f = AttentionPath(isa, head_dim)) paths.push_back(f);
  return paths;
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (int hd : {8, 16, 24, 32, 48, 64, 80, 128})
    for (int group : {1, 3, 8})
      for (int n_pos : {1, 2, 15, 16, 17, 100, 700})
        for (float scale : {1.0f / std::sqrt(static_cast<float>(hd)), 1.0f}) cases.push_back({hd, group, n_pos, scale});
  return cases;
}

// The two paths differ in summation order, FMA and exp (a polynomial against libm): each weight before its F16
// rounding agrees to ~1e-5 relative, so after it the two can differ by one F16 step, at most 2^-10 of the
// weight. The weights sum to 1 and |v| <= 1, so |difference| <= 2^-10 from the weights, plus the float sums'
// rounding (n_pos terms of at most 1, 2^-24 each). Most elements must agree far more closely: the RMS bound
// catches a path that is off everywhere by a fraction of the worst-case bound.
TEST(Attention, SimdPathsMatchScalarReference) {
  int checked = 0;
  for (AttentionIsa isa : {AttentionIsa::kAvx2, AttentionIsa::kAvx512}) {
    uint32_t seed = 1;
    for (const Case& c : Cases()) {
      const AttendFn fn = AttentionPath(isa, c.head_dim);
      if (fn == nullptr) continue;
      ++checked;
      const Data d = MakeData(c, seed++);
      const std::vector<float> got = Attend(fn, c, d), want = Attend(AttendKvHeadScalar, c, d);
      const double tol = std::ldexp(1.0, -10) + c.n_pos * std::ldexp(1.0, -24);
      double sq = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], tol) << "isa " << static_cast<int>(isa) << " head_dim " << c.head_dim << " group "
                                          << c.group << " n_pos " << c.n_pos << " i " << i;
        sq += (got[i] - want[i]) * (got[i] - want[i]);
      }
      EXPECT_LT(std::sqrt(sq / got.size()), 1e-4) << "isa " << static_cast<int>(isa) << " head_dim " << c.head_dim;
    }
  }
  if (checked == 0) GTEST_SKIP() << "this CPU has no SIMD attention path";
}

// The dispatched entry point runs one of the paths: its results are those of the widest path taking the size.
TEST(Attention, DispatchRunsTheWidestPath) {
  for (int hd : {8, 16, 20, 64, 136, 144}) {
    const Case c{hd, 3, 37, 0.3f};
    const Data d = MakeData(c, 5);
    AttendFn want_fn = AttendKvHeadScalar;
    if (AttendFn f = AttentionPath(AttentionIsa::kAvx2, hd)) want_fn = f;
    if (AttendFn f = AttentionPath(AttentionIsa::kAvx512, hd)) want_fn = f;
    const std::vector<float> got = Attend(AttendKvHead, c, d), want = Attend(want_fn, c, d);
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "head_dim " << hd;
  }
}

// Against the double reference, the F16 rounding of the query (2^-11 relative per element) moves each score by
// up to 2^-11 * scale * sum |q k| <= 2^-11 * scale * head_dim, so each weight by about that factor; the weights'
// own rounding adds 2^-11 relative. The output moves by at most the sum of the weight errors times max |v| = 1.
TEST(Attention, EveryPathAgreesWithDoubleSoftmaxAttention) {
  uint32_t seed = 1000;
  for (const Case& c : Cases()) {
    const Data d = MakeData(c, seed++);
    const std::vector<double> want = Naive(c, d);
    const double tol = 2 * (std::ldexp(1.0, -11) * c.scale * c.head_dim + std::ldexp(1.0, -11)) + 1e-5;
    for (AttendFn fn : Paths(c.head_dim)) {
      const std::vector<float> got = Attend(fn, c, d);
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], tol) << "head_dim " << c.head_dim << " group " << c.group << " n_pos " << c.n_pos;
    }
  }
}

// One position: its weight is exactly 1 (exp(0) / exp(0)), so every head's output is that position's value.
TEST(Attention, OnePositionGivesItsValueExactly) {
  for (int hd : {8, 16, 64, 128}) {
    const Case c{hd, 4, 1, 0.125f};
    const Data d = MakeData(c, 7);
    for (AttendFn fn : Paths(hd)) {
      const std::vector<float> got = Attend(fn, c, d);
      for (int g = 0; g < c.group; ++g)
        for (int i = 0; i < hd; ++i) ASSERT_EQ(got[g * hd + i], F16ToF32(d.v[hd + i])) << "head_dim " << hd;
    }
  }
}

// A score far above the rest takes all the weight, in both paths (no overflow from exp of large scores: the
// maximum is taken off first).
TEST(Attention, DominantScoreTakesAllTheWeight) {
  const Case c{64, 2, 33, 1.0f};
  Data d = MakeData(c, 9);
  for (float& x : d.q) x = 1.0f;
  const size_t offset = 64;
  for (int i = 0; i < 64; ++i) d.k[20 * d.stride + offset + i] = F32ToF16(100.0f);  // score 6400 at position 20
  for (AttendFn fn : Paths(64)) {
    const std::vector<float> got = Attend(fn, c, d);
    for (int g = 0; g < c.group; ++g)
      for (int i = 0; i < 64; ++i) ASSERT_EQ(got[g * 64 + i], F16ToF32(d.v[20 * d.stride + offset + i]));
  }
}

}  // namespace
}  // namespace qforge

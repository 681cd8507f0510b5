// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: decode bit-exact with ggml (random and edge blocks), encode error never
// above ggml's (real llama2.c weights, Gaussian rows with outliers, with and without importance), and
// RTN properties (half-step bound, determinism, zero rows, huge values). Set QFORGE_PRINT_RMSE=1 to print
// the per-type error table used in docs/formats.md.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <random>
#include <vector>

#include "ggml_reference.h"
#include "qforge/core/fp16.h"
#include "qforge/quant/registry.h"
#include "uniform_search.h"

namespace qforge {
namespace {

struct LegacyCase {
  GgmlType type;
  std::vector<size_t> f16_offsets;  // d (and m) positions in the block
  bool affine;                      // x = d*q + m
};

void PrintTo(const LegacyCase& c, std::ostream* os) { *os << GgmlTypeName(c.type); }

std::string CaseName(const ::testing::TestParamInfo<LegacyCase>& info) {
  return std::string(GgmlTypeName(info.param.type));
}

class LegacyQuant : public ::testing::TestWithParam<LegacyCase> {
 protected:
  const QuantType& Q() const {
    const QuantType* q = FindQuantType(GetParam().type);
    EXPECT_NE(q, nullptr);
    return *q;
  }
  size_t BlockBytes() const { return Q().layout().type_size; }
  std::vector<uint8_t> Encode(const std::vector<float>& x, const float* imp = nullptr) const {
    std::vector<uint8_t> out(x.size() / 32 * BlockBytes());
    Q().encode(x.data(), out.data(), static_cast<int64_t>(x.size()), imp);
    return out;
  }
  std::vector<float> Decode(const std::vector<uint8_t>& q, size_t n) const {
    std::vector<float> y(n);
    Q().decode(q.data(), y.data(), static_cast<int64_t>(n));
    return y;
  }
};

std::vector<float> GaussianRow(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> x(n);
  for (float& v : x) v = g(rng);
  for (size_t j = 0; j < n; j += 37) x[j] *= 8;  // a few outliers
  return x;
}

TEST_P(LegacyQuant, RegisteredWithGgmlLayout) {
  EXPECT_EQ(Q().layout().block_size, 32u);
  EXPECT_NE(Q().encode, nullptr);
  EXPECT_NE(Q().decode, nullptr);
}

#if defined(QFORGE_HAVE_REFEREE)
TEST_P(LegacyQuant, DecodeBitExactWithGgml) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    int64_t bad = testing::FirstDecodeMismatch(GetParam().type, Q().decode, 4096, GetParam().f16_offsets, seed);
    EXPECT_EQ(bad, -1) << "seed " << seed << ": first differing element " << bad;
  }
}

TEST_P(LegacyQuant, EncodeAllZeroAndHugeRowsLikeGgmlOrBetter) {
  std::vector<float> zero(256, 0.0f);
  std::vector<uint8_t> q = Encode(zero);
  for (size_t b = 0; b < q.size(); b += BlockBytes())
    for (size_t off : GetParam().f16_offsets) EXPECT_EQ(q[b + off] | q[b + off + 1] << 8, 0) << b;
  for (float v : Decode(q, zero.size())) EXPECT_EQ(v, 0.0f);

  // 1e30 overflows any fp16 scale. ggml stores Inf scales, so its decode yields Inf and NaN (Inf * 0);
  // qforge saturates scales at 65504 and stays finite (documented in docs/formats.md).
  std::vector<float> huge = GaussianRow(256, 7);
  for (size_t j = 0; j < huge.size(); j += 3) huge[j] = (j % 2 ? 1e30f : -1e30f);
  std::vector<float> y = Decode(Encode(huge), huge.size());
  for (float v : y) ASSERT_TRUE(std::isfinite(v));
  std::vector<float> ref = testing::GgmlRoundTrip(GetParam().type, huge.data(), 1, 256);
  int ggml_nonfinite = 0;
  for (float v : ref) ggml_nonfinite += !std::isfinite(v);
  std::printf("[ %s ] 1e30 row: ggml non-finite outputs %d / 256, qforge 0\n",
              std::string(Q().name()).c_str(), ggml_nonfinite);
}

const testing::ErrorDataset& Stories(int64_t n_per_row) {
  static testing::ErrorDataset ds = testing::LoadLlama2cWeights(
      std::string(QFORGE_SHARED_DIR) + "/models/stories260K/stories260K.bin", n_per_row);
  return ds;
}
const testing::ErrorDataset& BabyLlama() {
  static testing::ErrorDataset ds = testing::LoadLlama2cWeights(
      std::string(QFORGE_SHARED_DIR) + "/models/babyllama-tok105/babyllama105.bin");
  return ds;
}
const testing::ErrorDataset& Gaussian() {
  static testing::ErrorDataset ds = testing::GaussianWithOutliers(512, 256, 42);
  return ds;
}

TEST_P(LegacyQuant, EncodeErrorNotAboveGgml) {
  const bool print = std::getenv("QFORGE_PRINT_RMSE") != nullptr;
  for (const testing::ErrorDataset* ds : {&Stories(0), &BabyLlama(), &Gaussian()}) {
    ASSERT_GT(ds->nrows(), 0) << ds->name << " missing";
    std::vector<float> imp = testing::RandomImportance(ds->n_per_row, 99);
    testing::ErrorComparison c = testing::CompareWithGgml(GetParam().type, Q().encode, *ds, imp);
    if (print)
      std::printf("RMSE %s | %s | %.6g | %.6g | %.6g | %.6g\n", ds->name.c_str(),
                  std::string(Q().name()).c_str(), c.plain.ours, c.plain.ggml, c.weighted.ours,
                  c.weighted.ggml);
    EXPECT_LE(c.plain.ours, c.plain.ggml * (1 + 1e-6)) << ds->name;
    EXPECT_LE(c.weighted.ours, c.weighted.ggml * (1 + 1e-6)) << ds->name << " (weighted)";
  }
}
#endif  // QFORGE_HAVE_REFEREE

// Half-step bound. Where the scale clips nothing, every x/d lies within half a step of the grid, so the
// nearest level is within d/2 in exact arithmetic: |x - q*d| <= |d|/2 (symmetric) and
// |x - (q*d + m)| <= |d|/2 (affine). The decoder's float product (and sum, for affine) adds rounding of
// at most 1 ulp of the magnitudes involved: <= 2^-23 * (|q*d| + |m|) <= 2^-22 * (max|x| + |d|), well
// under the 1e-6 * (max|x| + |d|) slack used here.
// Without importance, Q4_0 keeps ggml's scale (the largest magnitude on the long end qmin = -8 of the grid, or
// its refit) even where an element of the other sign lies past the short end 7 + 1/2: like ggml, it clamps it
// to 7. Such an element decodes to the end level and is within one step of it: its magnitude is at most 8
// steps, up to the fp16 rounding of the scale (relative 2^-11, < 1/128 step). That is the one exception allowed.
TEST_P(LegacyQuant, RoundTripErrorWithinHalfStep) {
  const GgmlType type = GetParam().type;
  const float short_end = type == GgmlType::Q4_0 ? 7.0f : 0.0f;  // 0: no clipping
  int clamped = 0;
  for (uint32_t seed = 0; seed < 20; ++seed) {
    std::vector<float> x = GaussianRow(1024, seed, seed % 2 ? 0.02f : 3.0f);
    std::vector<uint8_t> q = Encode(x);
    std::vector<float> y = Decode(q, x.size());
    for (size_t b = 0; b < x.size() / 32; ++b) {
      const uint8_t* blk = q.data() + b * BlockBytes();
      const float d_signed = F16ToF32(static_cast<uint16_t>(blk[0] | blk[1] << 8));
      const float d = std::fabs(d_signed);
      const float m = GetParam().affine ? std::fabs(F16ToF32(static_cast<uint16_t>(blk[2] | blk[3] << 8))) : 0;
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[b * 32 + j]));
      const float slack = 1e-6f * (amax + m + d);
      for (int j = 0; j < 32; ++j) {
        size_t i = b * 32 + j;
        const float err = std::fabs(x[i] - y[i]);
        if (short_end > 0 && err > d / 2 + slack) {
          ++clamped;
          ASSERT_EQ(y[i], short_end * d_signed) << "seed " << seed << " element " << i << ": not the end level";
          ASSERT_GT(x[i] / d_signed, short_end + 0.5f) << "seed " << seed << " element " << i << ": not past the end";
          ASSERT_LE(err, d * (1 + 1.0f / 128) + slack) << "seed " << seed << " element " << i;
          continue;
        }
        ASSERT_LE(err, d / 2 + slack) << "seed " << seed << " element " << i;
      }
    }
  }
  if (short_end > 0) { EXPECT_GT(clamped, 0) << "the corpus no longer reaches the clamped case"; }
}

TEST_P(LegacyQuant, EncodeIsDeterministicAndNaNFree) {
  std::vector<float> x = GaussianRow(4096, 5);
  std::vector<float> imp(x.size());
  for (size_t j = 0; j < imp.size(); ++j) imp[j] = 0.1f + static_cast<float>(j % 7);
  EXPECT_EQ(Encode(x), Encode(x));
  EXPECT_EQ(Encode(x, imp.data()), Encode(x, imp.data()));
  for (float v : Decode(Encode(x, imp.data()), x.size())) ASSERT_TRUE(std::isfinite(v));
  // Subnormal-range inputs: scales become fp16 subnormals or zero, never NaN.
  for (float& v : x) v *= 1e-7f;
  for (float v : Decode(Encode(x), x.size())) ASSERT_TRUE(std::isfinite(v));
}

INSTANTIATE_TEST_SUITE_P(All, LegacyQuant,
                         ::testing::Values(LegacyCase{GgmlType::Q4_0, {0}, false},
                                           LegacyCase{GgmlType::Q4_1, {0, 2}, true},
                                           LegacyCase{GgmlType::Q5_0, {0}, false},
                                           LegacyCase{GgmlType::Q5_1, {0, 2}, true},
                                           LegacyCase{GgmlType::Q8_0, {0}, false}),
                         CaseName);

// The AVX2 per-block search, the AVX-512 row search and the portable evaluator must pick the same scale and
// levels, or the same model would quantize to different bytes on different CPUs.
TEST(UniformSearch, SimdAndPortableEvaluatorsChooseTheSameBlocks) {
  if (!UniformSearchHasSimdPath()) GTEST_SKIP() << "no SIMD evaluator on this CPU";
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::student_t_distribution<float> heavy(2.0f);
  const int64_t n = 32 * 65536;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = (i / 32) % 3 == 0 ? heavy(rng) : normal(rng) * 0.02f;
  for (int64_t i = 0; i < 32; ++i) x[i] = i == 5 ? 40.0f : 1e-3f * static_cast<float>(i);  // one outlier block
  // Blocks whose values sit exactly on or next to midpoints between levels for likely scales (the fast
  // evaluator must hand these to the exact one), and blocks so small that the scale is an fp16 subnormal.
  for (int64_t i = 32; i < 32 * 64; ++i) {
    const float half_step = 0.5f * static_cast<float>(i % 17 - 8);
    x[i] = (i / 32) % 2 ? half_step : std::nextafter(half_step, 100.0f) * 0.25f;
  }
  for (int64_t i = 32 * 64; i < 32 * 128; ++i) x[i] *= 1e-6f;
  // Many fp16-valued Gaussian blocks, like a model's weights: they reach rare paths of the search such as
  // a scale proposed again after the first 16 distinct ones (scored and refitted again by the reference).
  for (int64_t i = n / 2; i < n; ++i) x[i] = F16ToF32(F32ToF16(normal(rng) * 0.02f));
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q8_0}) {
    const QuantType* qt = FindQuantType(type);
    ASSERT_NE(qt, nullptr);
    const size_t bytes = static_cast<size_t>(n / 32) * qt->layout().type_size;
    std::vector<uint8_t> avx2(bytes), avx512(bytes), portable(bytes);
    UseUniformSearchPathForTesting(UniformSearchPath::kPortable);
    qt->encode(x.data(), portable.data(), n, nullptr);
    UseUniformSearchPathForTesting(UniformSearchPath::kAvx2Blocks);
    qt->encode(x.data(), avx2.data(), n, nullptr);
    UseUniformSearchPathForTesting(UniformSearchPath::kAuto);
    EXPECT_EQ(avx2, portable) << qt->name() << " (AVX2 per block)";
    if (UniformSearchHasAvx512Path()) {
      qt->encode(x.data(), avx512.data(), n, nullptr);
      EXPECT_EQ(avx512, portable) << qt->name() << " (AVX-512 rows)";
    }
  }
}


struct RowSearchResult {
  std::vector<float> d;
  std::vector<uint8_t> L;
};

RowSearchResult SearchRow(const std::vector<float>& x, int qmin, int qmax, int steps, SymmetricReference ref,
                          UniformSearchPath path) {
  const int64_t n_blocks = static_cast<int64_t>(x.size() / 32);
  RowSearchResult r{std::vector<float>(n_blocks), std::vector<uint8_t>(x.size())};
  UseUniformSearchPathForTesting(path);
  SearchSymmetricUnweightedRow(x.data(), n_blocks, qmin, qmax, steps, ref, r.d.data(), r.L.data());
  UseUniformSearchPathForTesting(UniformSearchPath::kAuto);
  return r;
}

// First block where two searches differ (scale bits or any level), -1 if none.
int64_t FirstDifferentBlock(const RowSearchResult& a, const RowSearchResult& b) {
  for (size_t i = 0; i < a.d.size(); ++i)
    if (std::memcmp(&a.d[i], &b.d[i], sizeof(float)) != 0 || std::memcmp(&a.L[32 * i], &b.L[32 * i], 32) != 0)
      return static_cast<int64_t>(i);
  return -1;
}

std::string DescribeBlock(const std::vector<float>& x, const RowSearchResult& a, const RowSearchResult& b, int64_t i) {
  std::string s = "block " + std::to_string(i) + ": d " + std::to_string(a.d[i]) + " vs " + std::to_string(b.d[i]) +
                  "\n x:";
  for (int j = 0; j < 32; ++j) s += " " + std::to_string(x[32 * i + j]);
  s += "\n L:";
  for (int j = 0; j < 32; ++j) s += " " + std::to_string(a.L[32 * i + j]) + "/" + std::to_string(b.L[32 * i + j]);
  return s;
}

struct SymmetricCase {
  const char* name;
  int qmin, qmax, steps;
  SymmetricReference ref;
};
const SymmetricCase kSymmetricCases[] = {
    {"Q4_0", -8, 7, -1, SymmetricReference::kSignedMaxOverQmin},
    {"Q5_0", -16, 15, 2, SymmetricReference::kSignedMaxOverQmin},
    {"Q4_0 grid, 2 steps", -8, 7, 2, SymmetricReference::kSignedMaxOverQmin},
    {"Q5_0 grid, reference scale and refit only", -16, 15, -1, SymmetricReference::kSignedMaxOverQmin},
    {"Q8_0", -128, 127, -1, SymmetricReference::kAbsMaxOverQmax},
    {"Q4_0 grid, 7 steps (wider than a batch holds: block by block)", -8, 7, 7,
     SymmetricReference::kSignedMaxOverQmin},
};

// Blocks that reach every branch of the batched search: fp16-valued Gaussian weights, heavy tails, single
// outliers, values on and next to level midpoints, fp16-subnormal scales, all-zero blocks, and blocks with
// NaN or Inf (handed to the per-block search).
std::vector<float> SearchCorpus(int64_t n_blocks, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::student_t_distribution<float> heavy(2.0f);
  std::vector<float> x(static_cast<size_t>(n_blocks) * 32);
  for (int64_t b = 0; b < n_blocks; ++b) {
    float* v = x.data() + 32 * b;
    switch (b % 9) {
      case 0: case 1: case 2:
        for (int j = 0; j < 32; ++j) v[j] = F16ToF32(F32ToF16(normal(rng) * 0.02f));
        break;
      case 3:
        for (int j = 0; j < 32; ++j) v[j] = heavy(rng);
        break;
      case 4:
        for (int j = 0; j < 32; ++j) v[j] = 1e-3f * normal(rng);
        v[rng() % 32] = b % 2 ? 40.0f : -40.0f;
        break;
      case 5:
        for (int j = 0; j < 32; ++j) {
          const float half_step = 0.5f * static_cast<float>(static_cast<int>(rng() % 17) - 8);
          v[j] = b % 2 ? half_step : std::nextafter(half_step, 100.0f) * 0.25f;
        }
        break;
      case 6:
        for (int j = 0; j < 32; ++j) v[j] = normal(rng) * 1e-6f;
        break;
      case 7:
        if (b % 4 == 3) {
          for (int j = 0; j < 32; ++j) v[j] = 0.0f;
        } else {
          for (int j = 0; j < 32; ++j) v[j] = normal(rng);
          v[rng() % 32] = b % 4 == 1 ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
        }
        break;
      default:
        for (int j = 0; j < 32; ++j) v[j] = normal(rng) * (b % 2 ? 1e4f : 1.0f);
    }
  }
  return x;
}

// The AVX-512 row search must choose exactly the portable per-block search's scales and levels, for every
// row length (batches of 16 with a partial last one) and for the large corpus.
TEST(UniformSearch, BatchedRowSearchMatchesPortable) {
  if (!UniformSearchHasAvx512Path()) GTEST_SKIP() << "no AVX-512 path on this CPU";
  for (const SymmetricCase& c : kSymmetricCases) {
    for (int64_t n_blocks = 1; n_blocks <= 40; ++n_blocks) {
      const std::vector<float> x = SearchCorpus(n_blocks, static_cast<uint32_t>(n_blocks));
      const RowSearchResult fast = SearchRow(x, c.qmin, c.qmax, c.steps, c.ref, UniformSearchPath::kAuto);
      const RowSearchResult ref = SearchRow(x, c.qmin, c.qmax, c.steps, c.ref, UniformSearchPath::kPortable);
      const int64_t bad = FirstDifferentBlock(fast, ref);
      ASSERT_EQ(bad, -1) << c.name << " n_blocks " << n_blocks << " " << DescribeBlock(x, fast, ref, bad);
    }
    const std::vector<float> x = SearchCorpus(9 * 4096 + 5, 1234);
    const RowSearchResult fast = SearchRow(x, c.qmin, c.qmax, c.steps, c.ref, UniformSearchPath::kAuto);
    const RowSearchResult ref = SearchRow(x, c.qmin, c.qmax, c.steps, c.ref, UniformSearchPath::kPortable);
    const int64_t bad = FirstDifferentBlock(fast, ref);
    ASSERT_EQ(bad, -1) << c.name << " " << DescribeBlock(x, fast, ref, bad);
  }
}

}  // namespace
}  // namespace qforge

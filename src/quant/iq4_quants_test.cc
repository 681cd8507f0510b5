// IQ4_NL and IQ4_XS: decode bit-exact with ggml (random and edge blocks, incl. every 6-bit sub-scale),
// encode error never above ggml's on real weights / Gaussian rows with outliers, with and without
// importance; determinism, zero rows and huge values. QFORGE_PRINT_RMSE=1 prints the docs table rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "ggml_reference.h"
#include "qforge/core/fp16.h"
#include "qforge/quant/blocks.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

class Iq4Quant : public ::testing::TestWithParam<GgmlType> {
 protected:
  const QuantType& Q() const { return *FindQuantType(GetParam()); }
  size_t BlockBytes() const { return Q().layout().type_size; }
  size_t BlockSize() const { return Q().layout().block_size; }
  std::vector<uint8_t> Encode(const std::vector<float>& x, const float* imp = nullptr) const {
    std::vector<uint8_t> out(x.size() / BlockSize() * BlockBytes());
    Q().encode(x.data(), out.data(), static_cast<int64_t>(x.size()), imp);
    return out;
  }
  std::vector<float> Decode(const std::vector<uint8_t>& q, size_t n) const {
    std::vector<float> y(n);
    Q().decode(q.data(), y.data(), static_cast<int64_t>(n));
    return y;
  }
};

std::vector<float> GaussianRow(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = g(rng);
  for (size_t j = 0; j < n; j += 41) x[j] *= 10;
  return x;
}

TEST_P(Iq4Quant, Registered) {
  ASSERT_NE(FindQuantType(GetParam()), nullptr);
  EXPECT_EQ(BlockBytes(), GetParam() == GgmlType::IQ4_NL ? sizeof(BlockIQ4_NL) : sizeof(BlockIQ4_XS));
}

TEST_P(Iq4Quant, EncodeIsDeterministicZeroSafeAndFinite) {
  std::vector<float> x = GaussianRow(2048, 3);
  std::vector<float> imp(x.size());
  for (size_t j = 0; j < imp.size(); ++j) imp[j] = 0.5f + static_cast<float>(j % 5);
  EXPECT_EQ(Encode(x), Encode(x));
  EXPECT_EQ(Encode(x, imp.data()), Encode(x, imp.data()));

  std::vector<float> zero(512, 0.0f);
  std::vector<uint8_t> q = Encode(zero);
  for (size_t b = 0; b < q.size(); b += BlockBytes()) EXPECT_EQ(q[b] | q[b + 1] << 8, 0);
  for (float v : Decode(q, zero.size())) EXPECT_EQ(v, 0.0f);

  std::vector<float> tiny = x;
  for (float& v : tiny) v *= 1e-7f;  // fp16-subnormal scales
  for (float v : Decode(Encode(tiny), tiny.size())) ASSERT_TRUE(std::isfinite(v));
}

#if defined(QFORGE_HAVE_REFEREE)
TEST_P(Iq4Quant, DecodeBitExactWithGgml) {
  for (uint32_t seed : {11u, 12u, 13u}) {
    int64_t bad = testing::FirstDecodeMismatch(GetParam(), Q().decode, 2048, {0}, seed);
    EXPECT_EQ(bad, -1) << "seed " << seed << ": first differing element " << bad;
  }
}

TEST_P(Iq4Quant, HugeValuesStayFinite) {
  // ggml's scale overflows fp16 to Inf (its decode gives Inf/NaN); qforge saturates at 65504.
  std::vector<float> x = GaussianRow(512, 9);
  for (size_t j = 0; j < x.size(); j += 3) x[j] = (j % 2 ? 1e30f : -1e30f);
  for (float v : Decode(Encode(x), x.size())) ASSERT_TRUE(std::isfinite(v));
  std::vector<float> ref = testing::GgmlRoundTrip(GetParam(), x.data(), 1, 512);
  int nonfinite = 0;
  for (float v : ref) nonfinite += !std::isfinite(v);
  std::printf("[ %s ] 1e30 row: ggml non-finite outputs %d / 512, qforge 0\n",
              std::string(Q().name()).c_str(), nonfinite);
}

TEST_P(Iq4Quant, EncodeErrorNotAboveGgml) {
  const bool print = std::getenv("QFORGE_PRINT_RMSE") != nullptr;
  // IQ4_XS needs rows that are a multiple of 256: the weights are re-cut into 256-element rows.
  const int64_t row = GetParam() == GgmlType::IQ4_XS ? 256 : 0;
  const std::string models = std::string(QFORGE_SHARED_DIR) + "/models/";
  std::vector<testing::ErrorDataset> sets = {
      testing::LoadLlama2cWeights(models + "stories260K/stories260K.bin", row),
      testing::LoadLlama2cWeights(models + "babyllama-tok105/babyllama105.bin", row),
      testing::GaussianWithOutliers(512, 256, 42)};
  for (const auto& ds : sets) {
    ASSERT_GT(ds.nrows(), 0) << ds.name << " missing";
    std::vector<float> imp = testing::RandomImportance(ds.n_per_row, 99);
    testing::ErrorComparison c = testing::CompareWithGgml(GetParam(), Q().encode, ds, imp);
    if (print)
      std::printf("RMSE %s | %s | %.6g | %.6g | %.6g | %.6g\n", ds.name.c_str(),
                  std::string(Q().name()).c_str(), c.plain.ours, c.plain.ggml, c.weighted.ours,
                  c.weighted.ggml);
    EXPECT_LE(c.plain.ours, c.plain.ggml * (1 + 1e-6)) << ds.name;
    EXPECT_LE(c.weighted.ours, c.weighted.ggml * (1 + 1e-6)) << ds.name << " (weighted)";
  }
}
#endif  // QFORGE_HAVE_REFEREE

INSTANTIATE_TEST_SUITE_P(All, Iq4Quant, ::testing::Values(GgmlType::IQ4_NL, GgmlType::IQ4_XS),
                         [](const auto& info) { return std::string(GgmlTypeName(info.param)); });

}  // namespace
}  // namespace qforge

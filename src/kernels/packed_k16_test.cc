// The q4_kx16 and q6_kx16 packed layouts (packed_k16.h): their scalar spec on packed bytes gives the stored
// Q4_K / Q6_K spec's bits (packing moves every byte where the layout says and changes no result), and the
// AVX-512 kernels are bit-exact with it on any row range and batch size, writing nothing outside their rows and
// reading nothing past the packed buffer.
#include "packed_k16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels_test_util.h"
#include "qforge/core/cpu_features.h"
#include "qforge/core/fp16.h"
#include "qforge/quant/k_blocks.h"

namespace qforge {
namespace {

using testing::GuardedBytes;
using testing::RandomActivations;
using testing::RandomWeights;

class PackedK16 : public ::testing::TestWithParam<GgmlType> {};

struct Matrix {
  int64_t rows, cols;
  size_t row_bytes;
  std::vector<uint8_t> stored, packed;
};

Matrix RandomMatrix(GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  const size_t super = type == GgmlType::Q4_K ? sizeof(block_q4_K) : sizeof(block_q6_K);
  Matrix m{rows, cols, static_cast<size_t>(cols / 256) * super, {}, {}};
  m.stored.resize(m.row_bytes * rows);
  RandomWeights(type, m.stored.data(), rows * cols, rng);
  m.packed.assign(PackedK16Bytes(type, rows, m.row_bytes), 0xA5);  // garbage: packing must overwrite all of it
  PackK16(type, m.stored.data(), m.row_bytes, rows, cols, m.packed.data());
  return m;
}

constexpr int64_t kRowCounts[] = {1, 15, 16, 17, 37, 64, 149};
constexpr int64_t kColCounts[] = {256, 512, 2048 + 256};

TEST_P(PackedK16, SpecOnPackedBytesEqualsStoredSpec) {
  const GgmlType type = GetParam();
  std::mt19937 rng(21);
  const MatVecKernel& stored = *ScalarMatVecKernel(type);
  const MatVecKernel& packed = *ScalarK16Kernel(type);
  for (int64_t rows : kRowCounts)
    for (int64_t cols : kColCounts) {
      SCOPED_TRACE("rows=" + std::to_string(rows) + " cols=" + std::to_string(cols));
      const Matrix m = RandomMatrix(type, rows, cols, rng);
      const std::vector<float> x = RandomActivations(cols, rng);
      PreparedActivation a_stored, a_packed;
      stored.prepare(x.data(), cols, &a_stored);
      packed.prepare(x.data(), cols, &a_packed);
      ASSERT_EQ(a_stored.quantized, a_packed.quantized);
      std::vector<float> want(rows), got(rows);
      stored.rows(m.stored.data(), m.row_bytes, a_stored, want.data(), 0, rows);
      packed.rows(m.packed.data(), m.row_bytes, a_packed, got.data(), 0, rows);
      for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(FloatBits(want[r]), FloatBits(got[r])) << "row " << r;
    }
}

TEST_P(PackedK16, Avx512MatchesSpecOnAnyRange) {
  const GgmlType type = GetParam();
  const MatVecKernel* simd = Avx512K16Kernel(type);
  if (simd == nullptr || !CpuHasAvx512Vnni()) GTEST_SKIP() << "no AVX-512 VNNI";
  const MatVecKernel& spec = *ScalarK16Kernel(type);
  std::mt19937 rng(22);
  for (int64_t rows : kRowCounts)
    for (int64_t cols : kColCounts) {
      const Matrix m = RandomMatrix(type, rows, cols, rng);
      const int n = 7;  // tiles of 4, 2 and 1
      std::vector<std::vector<float>> xs;
      std::vector<PreparedActivation> a_spec(n), a_simd(n);
      for (int t = 0; t < n; ++t) {
        xs.push_back(RandomActivations(cols, rng));
        spec.prepare(xs[t].data(), cols, &a_spec[t]);
        simd->prepare(xs[t].data(), cols, &a_simd[t]);
        ASSERT_GE(a_simd[t].quantized.size(), a_spec[t].quantized.size());
        ASSERT_TRUE(std::equal(a_spec[t].quantized.begin(), a_spec[t].quantized.end(), a_simd[t].quantized.begin()));
      }
      std::vector<std::vector<float>> want(n, std::vector<float>(rows));
      for (int t = 0; t < n; ++t) spec.rows(m.packed.data(), m.row_bytes, a_spec[t], want[t].data(), 0, rows);
      const std::pair<int64_t, int64_t> ranges[] = {{0, rows}, {1, rows}, {0, rows / 2}, {rows / 3, rows - rows / 4},
                                                    {rows - 1, rows}};
      for (auto [r0, r1] : ranges) {
        if (r0 >= r1) continue;
        SCOPED_TRACE("rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) + " range " +
                     std::to_string(r0) + ".." + std::to_string(r1));
        std::vector<float> y(rows + 2, NAN);
        simd->rows(m.packed.data(), m.row_bytes, a_simd[0], y.data() + 1, r0, r1);
        for (int64_t r = r0; r < r1; ++r) ASSERT_EQ(FloatBits(want[0][r]), FloatBits(y[1 + r - r0])) << "row " << r;
        ASSERT_TRUE(std::isnan(y[0]) && std::isnan(y[1 + r1 - r0])) << "wrote outside its rows";
        for (int nb : {1, 2, 3, n}) {
          const size_t ldy = rows + 3;
          std::vector<float> yb(nb * ldy, NAN);
          MatMulRows(*simd, m.packed.data(), m.row_bytes, a_simd.data(), nb, yb.data(), ldy, r0, r1);
          for (int t = 0; t < nb; ++t)
            for (int64_t r = 0; r < static_cast<int64_t>(ldy); ++r) {
              const float v = yb[t * ldy + r];
              if (r >= r0 && r < r1) {
                ASSERT_EQ(FloatBits(want[t][r]), FloatBits(v)) << "batch " << nb << " act " << t << " row " << r;
              } else {
                ASSERT_TRUE(std::isnan(v)) << "batch " << nb << " act " << t << " wrote row " << r;
              }
            }
        }
      }
    }
}

TEST_P(PackedK16, Avx512NeverReadsPastThePackedBytes) {
  const GgmlType type = GetParam();
  const MatVecKernel* simd = Avx512K16Kernel(type);
  if (simd == nullptr || !CpuHasAvx512Vnni()) GTEST_SKIP() << "no AVX-512 VNNI";
  std::mt19937 rng(23);
  for (int64_t rows : {5, 16, 21, 80}) {
    const Matrix m = RandomMatrix(type, rows, 512, rng);
    GuardedBytes g(m.packed.size());
    ASSERT_NE(g.data(), nullptr);
    std::memcpy(g.data(), m.packed.data(), m.packed.size());
    std::vector<float> xs[3];
    std::vector<PreparedActivation> acts(3);
    for (int t = 0; t < 3; ++t) {
      xs[t] = RandomActivations(512, rng);
      simd->prepare(xs[t].data(), 512, &acts[t]);
    }
    std::vector<float> y(rows), want(rows), yb(3 * rows);
    ScalarK16Kernel(type)->rows(m.packed.data(), m.row_bytes, acts[0], want.data(), 0, rows);
    simd->rows(g.data(), m.row_bytes, acts[0], y.data(), 0, rows);
    MatMulRows(*simd, g.data(), m.row_bytes, acts.data(), 3, yb.data(), rows, 0, rows);
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_EQ(FloatBits(want[r]), FloatBits(y[r])) << "row " << r;
      ASSERT_EQ(FloatBits(want[r]), FloatBits(yb[r])) << "batched row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, PackedK16, ::testing::Values(GgmlType::Q4_K, GgmlType::Q6_K),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return std::string(GgmlTypeName(info.param));
                         });

}  // namespace
}  // namespace qforge

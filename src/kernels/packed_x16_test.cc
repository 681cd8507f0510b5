// The x16 packed layouts (packed_x16.h), for Q4_0 and Q8_0: the scalar spec on
// packed bytes equals the same float steps computed straight from the stored
// blocks (so packing moves every byte where the layout says), the AVX-512
// kernel is bit-exact with that spec on any row range and batch size, nothing
// outside the requested rows is written or read past the packed buffer (the
// same for the AMX batch kernel, where the CPU has AMX), and the
// spec stays within activation rounding of the exact product.
#include "packed_x16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "activation_quant.h"
#include "dot_scalar.h"
#include "kernels_test_util.h"
#include "packed_k16.h"
#include "qforge/core/cpu_features.h"
#include "qforge/core/fp16.h"
#include "qforge/quant/blocks.h"

namespace qforge {
namespace {

using testing::GuardedBytes;
using testing::RandomActivations;
using testing::RandomWeights;

constexpr GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q8_0};

struct Matrix {
  GgmlType type;
  int64_t rows, cols;
  size_t row_bytes;
  std::vector<uint8_t> stored, packed;
};

Matrix RandomMatrix(GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  Matrix m{type, rows, cols, static_cast<size_t>(cols / 32) * (2 + X16QuantBytes(type)), {}, {}};
  m.stored.resize(m.row_bytes * rows);
  RandomWeights(type, m.stored.data(), rows * cols, rng);
  m.packed.assign(PackedX16Bytes(rows, m.row_bytes),
                  0xA5);  // garbage: packing must overwrite all of it
  PackX16(type, m.stored.data(), m.row_bytes, rows, cols, m.packed.data());
  return m;
}

// The spec's steps from a stored row: isum over the block in element order,
// then d and one FMA per block.
float SpecFromStoredRow(GgmlType type, const uint8_t* row, const uint8_t* act, int64_t nb) {
  float acc = 0;
  for (int64_t b = 0; b < nb; ++b) {
    ActQ8_0 a;
    std::memcpy(&a, act + b * sizeof(a), sizeof(a));
    int32_t isum = 0;
    uint16_t dw;
    if (type == GgmlType::Q4_0) {
      BlockQ4_0 w;
      std::memcpy(&w, row + b * sizeof(w), sizeof(w));
      for (int j = 0; j < 16; ++j) isum += ((w.qs[j] & 15) - 8) * a.qs[j] + ((w.qs[j] >> 4) - 8) * a.qs[j + 16];
      dw = w.d;
    } else {
      BlockQ8_0 w;
      std::memcpy(&w, row + b * sizeof(w), sizeof(w));
      for (int j = 0; j < 32; ++j) isum += w.qs[j] * a.qs[j];
      dw = w.d;
    }
    const float d = Keep(F16ToF32(dw) * F16ToF32(a.d));
    acc = std::fma(static_cast<float>(isum), d, acc);
  }
  return acc;
}

constexpr int64_t kRowCounts[] = {1, 15, 16, 17, 37, 64, 149};
constexpr int64_t kColCounts[] = {32, 64, 96, 256, 2048 + 32};

TEST(PackedX16, SpecOnPackedBytesEqualsStepsOnStoredRows) {
  std::mt19937 rng(11);
  for (GgmlType type : kTypes)
    for (int64_t rows : kRowCounts)
      for (int64_t cols : kColCounts) {
        SCOPED_TRACE(std::string(GgmlTypeName(type)) + " rows=" + std::to_string(rows) +
                     " cols=" + std::to_string(cols));
        const MatVecKernel& spec = *ScalarX16Kernel(type);
        const Matrix m = RandomMatrix(type, rows, cols, rng);
        ASSERT_EQ(m.packed.size() % (16 * m.row_bytes), 0u);
        ASSERT_GE(m.packed.size(), m.stored.size());
        const std::vector<float> x = RandomActivations(cols, rng);
        PreparedActivation act;
        spec.prepare(x.data(), cols, &act);
        std::vector<float> y(rows);
        spec.rows(m.packed.data(), m.row_bytes, act, y.data(), 0, rows);
        for (int64_t r = 0; r < rows; ++r) {
          const float want =
              SpecFromStoredRow(type, m.stored.data() + r * m.row_bytes, act.quantized.data(), cols / 32);
          ASSERT_EQ(FloatBits(want), FloatBits(y[r])) << "row " << r;
        }
      }
}

TEST(PackedX16, SpecWithinActivationRoundingOfExact) {
  // The spec's floats: per block one rounding of d = dw * da and one of the
  // FMA, so |spec - exact product with the rounded activations| <= (nb + 2) u
  // sum |w_c xq_c|; the activations' own rounding adds sum |w_c| |x_c - xq_c|.
  std::mt19937 rng(12);
  const double u = std::ldexp(1.0, -24);
  for (GgmlType type : kTypes)
    for (int64_t cols : kColCounts) {
      const Matrix m = RandomMatrix(type, 37, cols, rng);
      const std::vector<float> x = RandomActivations(cols, rng);
      PreparedActivation act;
      ScalarX16Kernel(type)->prepare(x.data(), cols, &act);
      std::vector<float> y(m.rows), xq(cols), wrow(cols);
      ScalarX16Kernel(type)->rows(m.packed.data(), m.row_bytes, act, y.data(), 0, m.rows);
      testing::DequantizeAct(ActFormat::kQ8_0, act.quantized.data(), x.data(), xq.data(), cols);
      for (int64_t r = 0; r < m.rows; ++r) {
        ExactDecode(type, m.stored.data() + r * m.row_bytes, wrow.data(), cols);
        double exact = 0, act_err = 0, mag = 0;
        for (int64_t c = 0; c < cols; ++c) {
          exact += static_cast<double>(wrow[c]) * x[c];
          act_err += std::fabs(wrow[c]) * std::fabs(static_cast<double>(x[c]) - xq[c]);
          mag += std::fabs(static_cast<double>(wrow[c]) * xq[c]);
        }
        const double tol = act_err + (cols / 32 + 4) * u * mag + u * std::fabs(exact);
        ASSERT_LE(std::fabs(y[r] - exact), tol) << GgmlTypeName(type) << " cols " << cols << " row " << r;
      }
    }
}

// A SIMD kernel against the spec on every row range shape: whole groups,
// ranges starting or ending inside a group, a single row; rows() and
// rows_batch() with batch sizes that exercise every tile width (AVX-512: 8, 4,
// 2, 1; AMX: 16 and a partial tile, and the small batches it hands to
// AVX-512). Rows outside the range keep their sentinel.
void ExpectMatchesSpecOnAnyRange(const MatVecKernel* (*kernel)(GgmlType)) {
  std::mt19937 rng(13);
  for (GgmlType type : kTypes)
    for (int64_t rows : kRowCounts)
      for (int64_t cols : kColCounts) {
        const MatVecKernel* simd = kernel(type);
        const MatVecKernel& spec = *ScalarX16Kernel(type);
        const Matrix m = RandomMatrix(type, rows, cols, rng);
        const int n = 37;
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
        const std::pair<int64_t, int64_t> ranges[] = {
            {0, rows}, {1, rows}, {0, rows / 2}, {rows / 3, rows - rows / 4}, {rows - 1, rows}};
        for (auto [r0, r1] : ranges) {
          if (r0 >= r1) continue;
          SCOPED_TRACE(std::string(GgmlTypeName(type)) + " rows=" + std::to_string(rows) +
                       " cols=" + std::to_string(cols) + " range " + std::to_string(r0) + ".." + std::to_string(r1));
          std::vector<float> y(rows + 2, NAN);
          simd->rows(m.packed.data(), m.row_bytes, a_simd[0], y.data() + 1, r0, r1);
          for (int64_t r = r0; r < r1; ++r) ASSERT_EQ(FloatBits(want[0][r]), FloatBits(y[1 + r - r0])) << "row " << r;
          ASSERT_TRUE(std::isnan(y[0]) && std::isnan(y[1 + r1 - r0])) << "wrote outside its rows";
          for (int nb : {1, 2, 5, 13, 16, 17, n}) {
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

TEST(PackedX16, Avx512MatchesSpecOnAnyRange) {
  if (Avx512X16Kernel(GgmlType::Q4_0) == nullptr || !CpuHasAvx512Vnni()) GTEST_SKIP() << "no AVX-512 VNNI";
  ExpectMatchesSpecOnAnyRange(Avx512X16Kernel);
}

TEST(PackedX16, AmxMatchesSpecOnAnyRange) {
  if (AmxX16Kernel(GgmlType::Q4_0) == nullptr) GTEST_SKIP() << "no AMX-INT8";
  ExpectMatchesSpecOnAnyRange(AmxX16Kernel);
}

// The AMX kernel keeps a batch it rearranged while the activations' serial
// numbers match: new activations in the same PreparedActivation objects (the
// runtime reuses them layer after layer) must not be served the old batch.
TEST(PackedX16, AmxSeesNewActivationsInReusedObjects) {
  if (AmxX16Kernel(GgmlType::Q4_0) == nullptr) GTEST_SKIP() << "no AMX-INT8";
  std::mt19937 rng(15);
  for (GgmlType type : kTypes) {
    const MatVecKernel* amx = AmxX16Kernel(type);
    const Matrix m = RandomMatrix(type, 32, 256, rng);
    const int n = 20;
    std::vector<PreparedActivation> acts(n);
    for (int round = 0; round < 3; ++round) {
      std::vector<std::vector<float>> xs(n);
      for (int t = 0; t < n; ++t) {
        xs[t] = RandomActivations(256, rng);
        amx->prepare(xs[t].data(), 256, &acts[t]);
      }
      std::vector<float> yb(n * 32), want(32);
      MatMulRows(*amx, m.packed.data(), m.row_bytes, acts.data(), n, yb.data(), 32, 0, 32);
      for (int t = 0; t < n; ++t) {
        ScalarX16Kernel(type)->rows(m.packed.data(), m.row_bytes, acts[t], want.data(), 0, 32);
        for (int r = 0; r < 32; ++r)
          ASSERT_EQ(FloatBits(want[r]), FloatBits(yb[t * 32 + r])) << "round " << round << " act " << t << " row " << r;
      }
    }
  }
}

// The packed buffer ends right before an inaccessible page: the kernels read
// only inside it.
void ExpectNeverReadsPastThePackedBytes(const MatVecKernel* (*kernel)(GgmlType)) {
  std::mt19937 rng(14);
  for (GgmlType type : kTypes)
    for (int64_t rows : {5, 16, 21, 80}) {
      const MatVecKernel* simd = kernel(type);
      const Matrix m = RandomMatrix(type, rows, 96, rng);
      GuardedBytes g(m.packed.size());
      ASSERT_NE(g.data(), nullptr);
      std::memcpy(g.data(), m.packed.data(), m.packed.size());
      constexpr int kActs = 18;  // an AMX tile and a partial one
      std::vector<float> xs[kActs];
      std::vector<PreparedActivation> acts(kActs);
      for (int t = 0; t < kActs; ++t) {
        xs[t] = RandomActivations(96, rng);
        simd->prepare(xs[t].data(), 96, &acts[t]);
      }
      std::vector<float> y(rows), want(rows), yb(kActs * rows);
      ScalarX16Kernel(type)->rows(m.packed.data(), m.row_bytes, acts[0], want.data(), 0, rows);
      simd->rows(g.data(), m.row_bytes, acts[0], y.data(), 0, rows);
      MatMulRows(*simd, g.data(), m.row_bytes, acts.data(), kActs, yb.data(), rows, 0, rows);
      for (int64_t r = 0; r < rows; ++r) {
        ASSERT_EQ(FloatBits(want[r]), FloatBits(y[r])) << "row " << r;
        ASSERT_EQ(FloatBits(want[r]), FloatBits(yb[r])) << "batched row " << r;
      }
    }
}

TEST(PackedX16, Avx512NeverReadsPastThePackedBytes) {
  if (Avx512X16Kernel(GgmlType::Q4_0) == nullptr || !CpuHasAvx512Vnni()) GTEST_SKIP() << "no AVX-512 VNNI";
  ExpectNeverReadsPastThePackedBytes(Avx512X16Kernel);
}

TEST(PackedX16, AmxNeverReadsPastThePackedBytes) {
  if (AmxX16Kernel(GgmlType::Q4_0) == nullptr) GTEST_SKIP() << "no AMX-INT8";
  ExpectNeverReadsPastThePackedBytes(AmxX16Kernel);
}

TEST(PackedLayouts, OnlyQ4_0Q8_0Q4_KAndQ6_KHaveOne) {
  for (GgmlType t : testing::kAllTypes) {
    const PackedLayout* own = X16Layout(t) != nullptr ? X16Layout(t) : K16Layout(t);
    const bool expected = t == GgmlType::Q4_0 || t == GgmlType::Q8_0 || t == GgmlType::Q4_K || t == GgmlType::Q6_K;
    EXPECT_EQ(own != nullptr, expected) << GgmlTypeName(t);
    const PackedLayout* l = FindPackedLayout(t);
    if (own == nullptr) {
      EXPECT_EQ(l, nullptr) << GgmlTypeName(t);
    } else if (l != nullptr) {  // only on AVX-512 VNNI machines
      EXPECT_EQ(l, own) << GgmlTypeName(t);
      EXPECT_NE(l->kernel, nullptr);
    }
  }
}

}  // namespace
}  // namespace qforge

// The q4_kx16 and q6_kx16 packed layouts (packed_k16.h): their scalar spec on packed bytes gives the stored
// Q4_K / Q6_K spec's bits (packing moves every byte where the layout says and changes no result), and the
// AVX-512 kernels (and the AMX batch kernel, where the CPU has AMX) are bit-exact with it on any row range and
// batch size, writing nothing outside their rows and reading nothing past the packed buffer.
#include "packed_k16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <initializer_list>
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

// A SIMD kernel against the spec on every row range shape, with rows() and with batches of n activations
// (`batches`: sizes that exercise every tile width of the kernel).
void ExpectMatchesSpecOnAnyRange(GgmlType type, const MatVecKernel* simd, int n, std::initializer_list<int> batches) {
  const MatVecKernel& spec = *ScalarK16Kernel(type);
  std::mt19937 rng(22);
  for (int64_t rows : kRowCounts)
    for (int64_t cols : kColCounts) {
      const Matrix m = RandomMatrix(type, rows, cols, rng);
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
        for (int nb : batches) {
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

TEST_P(PackedK16, Avx512MatchesSpecOnAnyRange) {
  const MatVecKernel* simd = Avx512K16Kernel(GetParam());
  if (simd == nullptr || !CpuHasAvx512Vnni()) GTEST_SKIP() << "no AVX-512 VNNI";
  ExpectMatchesSpecOnAnyRange(GetParam(), simd, 7, {1, 2, 3, 7});  // tiles of 4, 2 and 1
}

// AMX: whole tiles of 16, a partial one, and the small batches it hands to the VNNI kernel.
TEST_P(PackedK16, AmxMatchesSpecOnAnyRange) {
  const MatVecKernel* amx = AmxK16Kernel(GetParam());
  if (amx == nullptr) GTEST_SKIP() << "no AMX-INT8 kernel for this type or CPU";
  ExpectMatchesSpecOnAnyRange(GetParam(), amx, 37, {1, 3, 4, 16, 17, 37});
}

// The AMX kernel keeps a batch it rearranged while the activations' serial numbers match: new activations in
// the same PreparedActivation objects (the runtime reuses them layer after layer) must not get the old batch.
TEST_P(PackedK16, AmxSeesNewActivationsInReusedObjects) {
  const GgmlType type = GetParam();
  const MatVecKernel* amx = AmxK16Kernel(type);
  if (amx == nullptr) GTEST_SKIP() << "no AMX-INT8 kernel for this type or CPU";
  std::mt19937 rng(24);
  const Matrix m = RandomMatrix(type, 32, 512, rng);
  const int n = 20;
  std::vector<PreparedActivation> acts(n);
  for (int round = 0; round < 3; ++round) {
    std::vector<std::vector<float>> xs(n);
    for (int t = 0; t < n; ++t) {
      xs[t] = RandomActivations(512, rng);
      amx->prepare(xs[t].data(), 512, &acts[t]);
    }
    std::vector<float> yb(n * 32), want(32);
    MatMulRows(*amx, m.packed.data(), m.row_bytes, acts.data(), n, yb.data(), 32, 0, 32);
    for (int t = 0; t < n; ++t) {
      ScalarK16Kernel(type)->rows(m.packed.data(), m.row_bytes, acts[t], want.data(), 0, 32);
      for (int r = 0; r < 32; ++r)
        ASSERT_EQ(FloatBits(want[r]), FloatBits(yb[t * 32 + r])) << "round " << round << " act " << t << " row " << r;
    }
  }
}

void ExpectNeverReadsPastThePackedBytes(GgmlType type, const MatVecKernel* simd) {
  std::mt19937 rng(23);
  for (int64_t rows : {5, 16, 21, 80}) {
    const Matrix m = RandomMatrix(type, rows, 512, rng);
    GuardedBytes g(m.packed.size());
    ASSERT_NE(g.data(), nullptr);
    std::memcpy(g.data(), m.packed.data(), m.packed.size());
    constexpr int kActs = 18;  // an AMX tile and a partial one; the VNNI kernel's widest tile several times
    std::vector<float> xs[kActs];
    std::vector<PreparedActivation> acts(kActs);
    for (int t = 0; t < kActs; ++t) {
      xs[t] = RandomActivations(512, rng);
      simd->prepare(xs[t].data(), 512, &acts[t]);
    }
    std::vector<float> y(rows), want(rows), yb(kActs * rows);
    ScalarK16Kernel(type)->rows(m.packed.data(), m.row_bytes, acts[0], want.data(), 0, rows);
    simd->rows(g.data(), m.row_bytes, acts[0], y.data(), 0, rows);
    MatMulRows(*simd, g.data(), m.row_bytes, acts.data(), kActs, yb.data(), rows, 0, rows);
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_EQ(FloatBits(want[r]), FloatBits(y[r])) << "row " << r;
      ASSERT_EQ(FloatBits(want[r]), FloatBits(yb[r])) << "batched row " << r;
    }
  }
}

TEST_P(PackedK16, Avx512NeverReadsPastThePackedBytes) {
  const MatVecKernel* simd = Avx512K16Kernel(GetParam());
  if (simd == nullptr || !CpuHasAvx512Vnni()) GTEST_SKIP() << "no AVX-512 VNNI";
  ExpectNeverReadsPastThePackedBytes(GetParam(), simd);
}

TEST_P(PackedK16, AmxNeverReadsPastThePackedBytes) {
  const MatVecKernel* amx = AmxK16Kernel(GetParam());
  if (amx == nullptr) GTEST_SKIP() << "no AMX-INT8 kernel for this type or CPU";
  ExpectNeverReadsPastThePackedBytes(GetParam(), amx);
}

// The AMX kernel scales sub-block dots in float, exact while a sum of four scaled dots stays below 2^24
// (packed_k16_amx.cc). Its largest case: every nibble 15, every scale and min 63, activation bytes at full
// scale; the results must still be the spec's bits.
TEST(PackedK16Extremes, AmxQ4_KExactAtTheLargestSums) {
  const MatVecKernel* amx = AmxK16Kernel(GgmlType::Q4_K);
  if (amx == nullptr) GTEST_SKIP() << "no AMX-INT8";
  constexpr int64_t kRows = 16, kCols = 512;
  Matrix m{kRows, kCols, (kCols / 256) * sizeof(block_q4_K), {}, {}};
  m.stored.assign(m.row_bytes * kRows, 0xFF);  // nibbles 15, 6-bit scales and mins 63
  for (int64_t b = 0; b < kRows * kCols / 256; ++b) {
    block_q4_K blk;
    std::memcpy(&blk, m.stored.data() + b * sizeof(blk), sizeof(blk));
    blk.d = F32ToF16(1.0f);
    blk.dmin = F32ToF16(0.5f);
    std::memcpy(m.stored.data() + b * sizeof(blk), &blk, sizeof(blk));
  }
  m.packed.resize(PackedK16Bytes(GgmlType::Q4_K, kRows, m.row_bytes));
  PackK16(GgmlType::Q4_K, m.stored.data(), m.row_bytes, kRows, kCols, m.packed.data());
  constexpr int kActs = 16;
  std::vector<std::vector<float>> xs(kActs);
  std::vector<PreparedActivation> acts(kActs);
  for (int t = 0; t < kActs; ++t) {
    // Near the largest magnitudes, with odd sums: per 32 elements, 30 at full scale and two a step or two
    // below it (uniform bytes would make every sum a multiple of 32, exact in float at any size).
    const float sign = t % 2 == 0 ? -1.0f : 1.0f;
    xs[t].resize(kCols);
    for (int64_t c = 0; c < kCols; ++c) xs[t][c] = sign * (c % 32 == 5 ? 126.0f / 127 : c % 32 == 9 ? 125.0f / 127 : 1.0f);
    amx->prepare(xs[t].data(), kCols, &acts[t]);
  }
  std::vector<float> y(kActs * kRows), want(kRows);
  MatMulRows(*amx, m.packed.data(), m.row_bytes, acts.data(), kActs, y.data(), kRows, 0, kRows);
  for (int t = 0; t < kActs; ++t) {
    ScalarK16Kernel(GgmlType::Q4_K)->rows(m.packed.data(), m.row_bytes, acts[t], want.data(), 0, kRows);
    for (int r = 0; r < kRows; ++r) {
      ASSERT_TRUE(std::isfinite(want[r]));
      ASSERT_EQ(FloatBits(want[r]), FloatBits(y[t * kRows + r])) << "act " << t << " row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, PackedK16, ::testing::Values(GgmlType::Q4_K, GgmlType::Q6_K),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return std::string(GgmlTypeName(info.param));
                         });

}  // namespace
}  // namespace qforge

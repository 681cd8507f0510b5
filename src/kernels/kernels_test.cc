// Kernel tests: a builder-style tester (after XNNPACK's gemm-microkernel-tester) runs every SIMD kernel against
// the scalar spec over systematic sizes (1 block .. many, rows 1/3/7/33, unaligned weights, sub-ranges of
// rows), bounds the spec's error against the exact float product, and checks the activation quantizers.
// ggml comparisons (quantize_row_q8_*_ref, ggml's generic vec_dot) live in kernels_ggml_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "activation_quant.h"
#include "dot_scalar.h"
#include "kernels_internal.h"
#include "kernels_test_util.h"
#include "matvec_avx2.h"
#include "matvec_avx512.h"
#include "qforge/core/cpu_features.h"
#include "qforge/core/fp16.h"
#include "qforge/kernels/matvec.h"

namespace qforge {
namespace {

using testing::GuardedBytes;
using testing::kAllTypes;
using testing::RandomActivations;
using testing::RandomWeights;

class MatVecTester {
 public:
  MatVecTester& type(GgmlType t) { type_ = t; return *this; }
  MatVecTester& rows(int64_t r) { rows_ = r; return *this; }
  MatVecTester& cols(int64_t c) { cols_ = c; return *this; }
  MatVecTester& offset(int o) { offset_ = o; return *this; }  // weight misalignment in bytes
  MatVecTester& seed(uint32_t s) { seed_ = s; return *this; }

  std::string Describe() const {
    return std::string(GgmlTypeName(type_)) + " rows=" + std::to_string(rows_) + " cols=" + std::to_string(cols_) +
           " offset=" + std::to_string(offset_) + " seed=" + std::to_string(seed_);
  }

  // (a) SIMD vs the scalar spec: same activation bytes; quantized dots bit-exact. Float types (F32/F16/BF16)
  // add the same float products in double but in 16 lanes instead of sequentially: each double sum is within
  // n * 2^-53 * sum|w_c x_c| of the exact sum of products, so after the final rounding to float the two agree
  // within u * |spec| + 2 * n * 2^-53 * sum|w_c x_c| (u = 2^-24; one float rounding of the result may differ).
  void TestSimd(const MatVecKernel& simd) const {
    SCOPED_TRACE(Describe());
    const MatVecKernel* ref = ScalarMatVecKernel(type_);
    ASSERT_NE(ref, nullptr);
    std::mt19937 rng(seed_);
    const size_t row_bytes = RowBytes();
    std::vector<uint8_t> storage(row_bytes * rows_ + offset_);
    uint8_t* w = storage.data() + offset_;
    RandomWeights(type_, w, rows_ * cols_, rng);
    const std::vector<float> x = RandomActivations(cols_, rng);
    PreparedActivation a_ref, a_simd;
    ref->prepare(x.data(), cols_, &a_ref);
    simd.prepare(x.data(), cols_, &a_simd);
    // A SIMD prepare() may append kernel-private data after the standard bytes (matvec_avx512.cc does).
    const size_t standard = ActBytes(VecDotFormat(type_), cols_);
    ASSERT_EQ(a_ref.quantized.size(), standard);
    ASSERT_GE(a_simd.quantized.size(), standard);
    ASSERT_TRUE(std::equal(a_ref.quantized.begin(), a_ref.quantized.end(), a_simd.quantized.begin()))
        << "activation bytes differ";
    // Whole range, then a sub-range starting at row 1 (checks y[r - r0] indexing).
    std::vector<float> y_ref(rows_), y_simd(rows_, NAN);
    ref->rows(w, row_bytes, a_ref, y_ref.data(), 0, rows_);
    simd.rows(w, row_bytes, a_simd, y_simd.data(), 0, rows_);
    if (rows_ > 1) simd.rows(w, row_bytes, a_simd, y_simd.data() + 1, 1, rows_);
    const bool float_type = type_ == GgmlType::F32 || type_ == GgmlType::F16 || type_ == GgmlType::BF16;
    std::vector<float> wrow(cols_), xa(cols_);
    for (int64_t r = 0; r < rows_; ++r) {
      if (!float_type) {
        ASSERT_EQ(FloatBits(y_ref[r]), FloatBits(y_simd[r])) << "row " << r << ": " << y_ref[r] << " vs " << y_simd[r];
        continue;
      }
      Decode(w + r * row_bytes, wrow.data());
      DequantizeAct(a_ref, xa.data());
      double abs_sum = 0;
      for (int64_t c = 0; c < cols_; ++c) abs_sum += std::fabs(static_cast<double>(wrow[c]) * xa[c]);
      const double tol = std::ldexp(1.0, -24) * std::fabs(y_ref[r]) + 2.0 * cols_ * std::ldexp(1.0, -53) * abs_sum;
      ASSERT_LE(std::fabs(static_cast<double>(y_ref[r]) - y_simd[r]), tol) << "row " << r;
    }
  }

  // (b) spec vs the exact float product. The spec computes sum_c w_c * xq_c (xq = the dequantized activation)
  // with exact integers, then float steps. Block order (Q4_1, Q5_1, k-quants): per block <= 3 roundings and one
  // accumulation add (<= nb + 3 roundings on any term). Lane-strided (Q4_0, Q5_0, Q8_0, IQ4_NL): one rounding of
  // d, one per FMA of the term's accumulator chain (<= ceil(nb / 2)), 3 adds of the final reduction (<= nb + 4).
  // So
  //   |spec - exact| <= sum_c |w_c| |x_c - xq_c| + (nb + 4) * u * sum_c |w_c xq_c|,
  // and |x_c - xq_c| <= step_c / 2 + 127 |d_c - fp16(d_c)| (Q8_0/Q8_1 store d in fp16; Q8_K keeps a float d).
  void TestScalarVsExact() const {
    SCOPED_TRACE(Describe());
    const MatVecKernel* ref = ScalarMatVecKernel(type_);
    std::mt19937 rng(seed_);
    const size_t row_bytes = RowBytes();
    std::vector<uint8_t> storage(row_bytes * rows_ + offset_);
    uint8_t* w = storage.data() + offset_;
    RandomWeights(type_, w, rows_ * cols_, rng);
    const std::vector<float> x = RandomActivations(cols_, rng);
    PreparedActivation act;
    ref->prepare(x.data(), cols_, &act);
    std::vector<float> y(rows_), exact(rows_), wrow(cols_), xq(cols_);
    ref->rows(w, row_bytes, act, y.data(), 0, rows_);
    ExactMatVec(type_, w, row_bytes, x.data(), cols_, exact.data(), rows_);
    DequantizeAct(act, xq.data());
    CheckActStep(x, act, xq);
    const int64_t nb = cols_ / std::max(1, ActBlockElems(VecDotFormat(type_)));
    const double u = std::ldexp(1.0, -24);
    for (int64_t r = 0; r < rows_; ++r) {
      Decode(w + r * row_bytes, wrow.data());
      double act_err = 0, mag = 0;
      for (int64_t c = 0; c < cols_; ++c) {
        act_err += std::fabs(wrow[c]) * std::fabs(static_cast<double>(x[c]) - xq[c]);
        mag += std::fabs(static_cast<double>(wrow[c]) * xq[c]);
      }
      const double tol = act_err + OffsetTermError(w + r * row_bytes, act) + (nb + 4) * u * mag + u * std::fabs(exact[r]);
      ASSERT_LE(std::fabs(static_cast<double>(y[r]) - exact[r]), tol) << "row " << r;
    }
  }

  // (c) Batched products (prefill): MatMulRows over n activations (the kernel's rows_batch, or the tiled
  // fallback) gives, bit for bit, what rows() gives for each activation alone, on a sub-range of rows; the
  // other rows of y stay untouched.
  void TestBatch(const MatVecKernel& k, int n) const {
    SCOPED_TRACE(Describe() + " n=" + std::to_string(n));
    std::mt19937 rng(seed_);
    const size_t row_bytes = RowBytes();
    std::vector<uint8_t> storage(row_bytes * rows_ + offset_);
    uint8_t* w = storage.data() + offset_;
    RandomWeights(type_, w, rows_ * cols_, rng);
    std::vector<std::vector<float>> xs;
    std::vector<PreparedActivation> acts(n);
    for (int t = 0; t < n; ++t) {
      xs.push_back(RandomActivations(cols_, rng));
      k.prepare(xs.back().data(), cols_, &acts[t]);
    }
    const int64_t r0 = rows_ > 1 ? 1 : 0;
    const size_t ldy = static_cast<size_t>(rows_) + 3;
    std::vector<float> y(n * ldy, NAN), one(rows_);
    MatMulRows(k, w, row_bytes, acts.data(), n, y.data(), ldy, r0, rows_);
    for (int t = 0; t < n; ++t) {
      k.rows(w, row_bytes, acts[t], one.data(), r0, rows_);
      for (int64_t r = 0; r < static_cast<int64_t>(ldy); ++r) {
        const float got = y[t * ldy + r];
        if (r < r0 || r >= rows_) {
          ASSERT_TRUE(std::isnan(got)) << "activation " << t << " row " << r << " written outside [r0, r1)";
        } else {
          ASSERT_EQ(FloatBits(one[r - r0]), FloatBits(got)) << "activation " << t << " row " << r;
        }
      }
    }
  }

 private:
  size_t RowBytes() const {
    const GgmlTypeLayout l = GgmlLayout(type_);
    return static_cast<size_t>(cols_ / l.block_size) * l.type_size;
  }
  void Decode(const uint8_t* row, float* out) const { ExactDecode(type_, row, out, cols_); }

  // Q4_1/Q5_1 take the offset term from the activation's s = fp16(d * sum q) instead of fp16(d) * sum q:
  // sum over blocks of |m| * |s - fp16(d) * sum q|.
  double OffsetTermError(const uint8_t* row, const PreparedActivation& a) const {
    if (VecDotFormat(type_) != ActFormat::kQ8_1) return 0;
    const GgmlTypeLayout l = GgmlLayout(type_);
    double err = 0;
    for (int64_t b = 0; b < cols_ / 32; ++b) {
      uint16_t m;
      std::memcpy(&m, row + b * l.type_size + 2, 2);
      ActQ8_1 blk;
      std::memcpy(&blk, a.quantized.data() + b * sizeof(blk), sizeof(blk));
      int sum = 0;
      for (int j = 0; j < 32; ++j) sum += blk.qs[j];
      err += std::fabs(F16ToF32(m)) * std::fabs(F16ToF32(blk.s) - static_cast<double>(F16ToF32(blk.d)) * sum);
    }
    return err;
  }

  // Activations as the kernels see them.
  void DequantizeAct(const PreparedActivation& a, float* out) const {
    testing::DequantizeAct(VecDotFormat(type_), a.quantized.data(), a.x, out, cols_);
  }

  // Every rounded activation is within half a step (+ the fp16 rounding of Q8_0/Q8_1 scales) of x.
  void CheckActStep(const std::vector<float>& x, const PreparedActivation& a, const std::vector<float>& xq) const {
    const ActFormat f = VecDotFormat(type_);
    const int be = ActBlockElems(f);
    if (be == 1) return;
    for (int64_t b = 0; b < cols_ / be; ++b) {
      float amax = 0;
      for (int j = 0; j < be; ++j) amax = std::max(amax, std::fabs(x[b * be + j]));
      const double d = amax / 127.0;
      const double d16_err = f == ActFormat::kQ8_K ? 0 : std::fabs(d - F16ToF32(F32ToF16(amax / 127.0f)));
      for (int j = 0; j < be; ++j) {
        const int64_t c = b * be + j;
        ASSERT_LE(std::fabs(static_cast<double>(x[c]) - xq[c]), d / 2 * (1 + 1e-6) + 127 * d16_err + 1e-30)
            << "activation " << c;
      }
    }
  }

  GgmlType type_ = GgmlType::Q4_0;
  int64_t rows_ = 1;
  int64_t cols_ = 256;
  int offset_ = 0;
  uint32_t seed_ = 1;
};

std::vector<int64_t> ColsFor(GgmlType t) {
  const int64_t b = GgmlLayout(t).block_size == 1 ? 32 : GgmlLayout(t).block_size;
  std::vector<int64_t> cols = {b, 2 * b, 3 * b, 5 * b, 8 * b, 17 * b};
  if (b == 32) cols.push_back(4096);
  if (GgmlLayout(t).block_size == 1) cols.insert(cols.end(), {1, 7, 33, 100});  // float tails
  return cols;
}

// Every SIMD kernel this CPU can run for t (not only the best one: on an AVX-512 machine the AVX2 table is
// still what AVX2-only machines run, so it is tested too).
std::vector<const MatVecKernel*> SimdKernels(GgmlType t) {
  std::vector<const MatVecKernel*> ks;
  if (CpuHasAvx2())
    if (const MatVecKernel* k = Avx2MatVecKernel(t)) ks.push_back(k);
  if (CpuHasAvx512Vnni()) {
    if (const MatVecKernel* k = Avx512LegacyMatVecKernel(t)) ks.push_back(k);
    if (const MatVecKernel* k = Avx512KMatVecKernel(t)) ks.push_back(k);
  }
  return ks;
}

TEST(MatVecKernels, SimdMatchesScalarSpec) {
  std::map<std::string, int> tested;  // isa -> types
  for (GgmlType t : kAllTypes) {
    for (const MatVecKernel* simd : SimdKernels(t)) {
      ++tested[std::string(simd->isa)];
      uint32_t seed = 100;
      for (int64_t cols : ColsFor(t))
        for (int64_t rows : {1, 3, 7, 33})
          for (int offset : {0, 1, 3}) {
            SCOPED_TRACE(std::string(simd->isa));
            MatVecTester().type(t).rows(rows).cols(cols).offset(offset).seed(seed++).TestSimd(*simd);
            if (::testing::Test::HasFatalFailure()) return;
          }
    }
  }
  if (tested.empty()) GTEST_SKIP() << "no SIMD kernels on this CPU";
  for (const auto& [isa, n] : tested) std::printf("SIMD (%s) kernels tested: %d types\n", isa.c_str(), n);
}

TEST(MatVecKernels, BatchedEqualsPerActivation) {
  for (GgmlType t : kAllTypes) {
    std::vector<const MatVecKernel*> ks = SimdKernels(t);
    ks.push_back(ScalarMatVecKernel(t));
    for (const MatVecKernel* k : ks) {
      if (k == nullptr) continue;
      uint32_t seed = 300;
      const std::vector<int64_t> cols = ColsFor(t);
      for (int64_t c : {cols[0], cols[3], cols.back()})
        for (int64_t rows : {1, 9, 33})
          for (int n : {2, 8, 13}) {
            MatVecTester().type(t).rows(rows).cols(c).offset(1).seed(seed++).TestBatch(*k, n);
            if (::testing::Test::HasFatalFailure()) return;
          }
    }
  }
}

TEST(MatVecKernels, SimdNeverReadsPastTheWeights) {
  int tested = 0;
  for (GgmlType t : kAllTypes) {
    const GgmlTypeLayout l = GgmlLayout(t);
    for (const MatVecKernel* simd : SimdKernels(t)) {
      const MatVecKernel* ref = ScalarMatVecKernel(t);
      for (int64_t blocks : {1, 2, 3, 8}) {
        const int64_t cols = blocks * std::max<int64_t>(32, l.block_size), rows = 5;
        const size_t row_bytes = static_cast<size_t>(cols / l.block_size) * l.type_size;
        GuardedBytes w(row_bytes * rows);
        ASSERT_NE(w.data(), nullptr);
        std::mt19937 rng(static_cast<uint32_t>(blocks));
        RandomWeights(t, w.data(), rows * cols, rng);
        std::vector<std::vector<float>> xs;
        std::vector<PreparedActivation> acts(3);
        for (auto& a : acts) {
          xs.push_back(RandomActivations(cols, rng));
          simd->prepare(xs.back().data(), cols, &a);
        }
        PreparedActivation a_ref;
        ref->prepare(xs[0].data(), cols, &a_ref);
        std::vector<float> y_ref(rows), y(rows), yb(3 * rows);
        ref->rows(w.data(), row_bytes, a_ref, y_ref.data(), 0, rows);
        simd->rows(w.data(), row_bytes, acts[0], y.data(), 0, rows);
        MatMulRows(*simd, w.data(), row_bytes, acts.data(), 3, yb.data(), rows, 0, rows);
        for (int64_t r = 0; r < rows; ++r) {
          if (l.block_size > 1) {
            ASSERT_EQ(FloatBits(y_ref[r]), FloatBits(y[r])) << GgmlTypeName(t) << " row " << r;
          }
          ASSERT_EQ(FloatBits(y[r]), FloatBits(yb[r])) << GgmlTypeName(t) << " batched row " << r;
        }
        ++tested;
      }
    }
  }
  if (tested == 0) GTEST_SKIP() << "no SIMD kernels on this CPU";
}

TEST(MatVecKernels, ScalarSpecWithinActivationRoundingOfExact) {
  for (GgmlType t : kAllTypes) {
    uint32_t seed = 7;
    for (int64_t cols : ColsFor(t))
      for (int64_t rows : {1, 7}) {
        MatVecTester().type(t).rows(rows).cols(cols).offset(1).seed(seed++).TestScalarVsExact();
        if (::testing::Test::HasFatalFailure()) return;
      }
  }
}

// Extreme activation blocks: ties at half steps, zero blocks, +max and -max of equal magnitude, huge/tiny.
std::vector<float> TrickyActivations(int64_t n, std::mt19937& rng) {
  std::vector<float> x(n);
  std::uniform_int_distribution<int> q(-127, 127);
  std::uniform_int_distribution<int> kind(0, 5);
  for (int64_t b = 0; b < n / 32; ++b) {
    float* v = x.data() + 32 * b;
    const int k = kind(rng);
    for (int j = 0; j < 32; ++j) {
      switch (k) {
        case 0: v[j] = 0.0f; break;                                   // all zero
        case 1: v[j] = (q(rng) + 0.5f) * 0.125f; break;               // exact half steps
        case 2: v[j] = static_cast<float>(q(rng)) * 1e-3f; break;
        case 3: v[j] = std::ldexp(static_cast<float>(q(rng)), 60); break;
        case 4: v[j] = std::ldexp(static_cast<float>(q(rng)), -60); break;
        default: v[j] = std::normal_distribution<float>(0, 1)(rng); break;
      }
    }
    if (k == 2) { v[3] = -0.127f; v[9] = 0.127f; }  // equal magnitudes, negative first
  }
  return x;
}

TEST(ActivationQuant, SimdBytesEqualScalar) {
  if (!CpuHasAvx2()) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(42);
  for (ActFormat f : {ActFormat::kQ8_0, ActFormat::kQ8_1, ActFormat::kQ8_K, ActFormat::kF16}) {
    for (int trial = 0; trial < 50; ++trial) {
      const int64_t n = 256 * (1 + trial % 4);
      const std::vector<float> x = trial % 2 ? TrickyActivations(n, rng) : RandomActivations(n, rng);
      std::vector<uint8_t> a(ActBytes(f, n), 0xAA), b(ActBytes(f, n), 0x55);
      QuantizeAct(f, x.data(), a.data(), n);
      QuantizeActAvx2(f, x.data(), b.data(), n);
      ASSERT_EQ(a, b) << "format " << static_cast<int>(f) << " trial " << trial;
    }
  }
}

TEST(ActivationQuant, Q8_KUsesSignedMaxAndTiesToEven) {
  std::vector<float> x(256, 0.0f);
  x[5] = -2.0f;  // largest magnitude, negative: iscale = -127 / -2 = 63.5
  x[6] = 2.0f;
  x[7] = 1.0f / 127.0f;  // 63.5/127 = 0.5 -> ties to even: 0
  x[8] = 3.0f / 127.0f;  // 1.5 -> 2
  ActQ8_K b;
  QuantizeActQ8_K(x.data(), &b, 256);
  EXPECT_EQ(b.d, 1.0f / 63.5f);
  EXPECT_EQ(b.qs[5], -127);
  EXPECT_EQ(b.qs[6], 127);
  EXPECT_EQ(b.qs[7], 0);
  EXPECT_EQ(b.qs[8], 2);
  EXPECT_EQ(b.bsums[0], 2);
}

TEST(ActivationQuant, Q8_0RoundsTiesToEvenLikeGgmlX86) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // d = 1, multiplier 127 / 127 = 1
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 3.5f;
  ActQ8_0 b;
  QuantizeActQ8_0(x.data(), &b, 32);
  EXPECT_EQ(F16ToF32(b.d), 1.0f);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], -2);
  EXPECT_EQ(b.qs[3], 4);
}

TEST(MatVecDispatch, ScalarTableAlwaysPresent) {
  for (GgmlType t : kAllTypes) {
    const MatVecKernel* k = FindMatVecKernel(t, KernelIsa::kScalar);
    ASSERT_NE(k, nullptr) << GgmlTypeName(t);
    EXPECT_EQ(k->isa, "scalar");
    EXPECT_NE(FindMatVecKernel(t), nullptr);
  }
}

}  // namespace
}  // namespace qforge

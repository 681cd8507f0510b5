// Differential tests against ggml (llama.cpp's libggml-base / libggml-cpu from the pinned npm package):
// (1) our Q8_0 / Q8_1 / Q8_K activation bytes equal what llama.cpp runs on x86 (libggml-cpu-haswell's
// quantize_row_q8_0/q8_1/q8_K; for Q8_K that is quantize_row_q8_K_ref, also checked directly); (2) our scalar spec equals ggml's
// generic vec_dot_* (dlopen'ed from libggml-cpu-haswell.so) on the same activation bytes: bit-exact where the
// float formula is the same (Q4_1, Q5_1, Q2_K), within a float-reordering tolerance otherwise (Q4_0, Q5_0,
// Q8_0, IQ4_NL use lane-strided accumulation, dot_scalar.h; Q3_K..Q6_K and IQ4_XS sum float lanes).
#include <gtest/gtest.h>

#if defined(QFORGE_HAVE_REFEREE)
#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "activation_quant.h"
#include "kernels_test_util.h"
#include "matvec_avx2.h"
#include "qforge/core/fp16.h"
#include "qforge/kernels/matvec.h"

extern "C" {
void quantize_row_q8_0_ref(const float* x, void* y, int64_t k);
void quantize_row_q8_1_ref(const float* x, void* y, int64_t k);
void quantize_row_q8_K_ref(const float* x, void* y, int64_t k);
}

namespace qforge {
namespace {

using testing::RandomActivations;
using testing::RandomWeights;

using VecDot = void (*)(int n, float* s, size_t bs, const void* vx, size_t bx, const void* vy, size_t by, int nrc);

void* GgmlCpu() {
  static void* h = [] {
    const std::string lib = std::string(QFORGE_GGML_BACKEND_DIR) + "/libggml-cpu-haswell.so";
    return CpuHasAvx2() ? dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL) : nullptr;
  }();
  return h;
}

using Quantize = void (*)(const float* x, void* y, int64_t k);

// Inputs that hit every rounding corner: zero blocks, ±max of equal magnitude, many exact ties.
std::vector<float> HardActivations(int trial, int64_t n, std::mt19937& rng) {
  std::vector<float> x = RandomActivations(n, rng);
  if (trial % 5 == 0) std::fill(x.begin(), x.begin() + 256, 0.0f);
  if (trial % 7 == 1) x[3] = -std::fabs(x[3]) - 100.0f, x[4] = -x[3];
  if (trial % 3 == 2)
    for (auto& v : x) v = std::round(v * 8.0f) / 8.0f + 1.0f / 16;
  return x;
}

TEST(GgmlActivationQuant, Q8_KBytesEqualGgmlReference) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t n = 256 * (1 + trial % 3);
    const std::vector<float> x = HardActivations(trial, n, rng);
    std::vector<uint8_t> ours(ActBytes(ActFormat::kQ8_K, n)), ref(ours.size(), 0);
    QuantizeAct(ActFormat::kQ8_K, x.data(), ours.data(), n);
    quantize_row_q8_K_ref(x.data(), ref.data(), n);
    ASSERT_EQ(ours, ref) << "trial " << trial;
  }
}

TEST(GgmlActivationQuant, BytesEqualGgmlX86Backend) {
  void* h = GgmlCpu();
  if (h == nullptr) GTEST_SKIP() << "libggml-cpu-haswell.so not loadable";
  std::mt19937 rng(6);
  struct Case {
    ActFormat f;
    const char* fn;
    Quantize portable_ref;
  };
  for (const Case& c : {Case{ActFormat::kQ8_0, "quantize_row_q8_0", quantize_row_q8_0_ref},
                        Case{ActFormat::kQ8_1, "quantize_row_q8_1", quantize_row_q8_1_ref},
                        Case{ActFormat::kQ8_K, "quantize_row_q8_K", quantize_row_q8_K_ref}}) {
    auto ggml = reinterpret_cast<Quantize>(dlsym(h, c.fn));
    ASSERT_NE(ggml, nullptr) << c.fn;
    int differ_from_portable_ref = 0;
    for (int trial = 0; trial < 40; ++trial) {
      const int64_t n = 256 * (1 + trial % 3);
      const std::vector<float> x = HardActivations(trial, n, rng);
      std::vector<uint8_t> ours(ActBytes(c.f, n)), ref(ours.size(), 0), portable(ours.size(), 0);
      QuantizeAct(c.f, x.data(), ours.data(), n);
      ggml(x.data(), ref.data(), n);
      ASSERT_EQ(ours, ref) << c.fn << " trial " << trial;
      c.portable_ref(x.data(), portable.data(), n);
      differ_from_portable_ref += ours != portable;
    }
    std::printf("%s: x86 backend bytes matched in 40 rows; %d rows differ from the portable _ref version\n", c.fn,
                differ_from_portable_ref);
  }
}

TEST(GgmlVecDot, ScalarSpecMatchesGgmlGeneric) {
  void* h = GgmlCpu();
  if (h == nullptr) GTEST_SKIP() << "libggml-cpu-haswell.so not loadable: " << dlerror();
  struct Case {
    GgmlType type;
    const char* fn;
    bool same_formula;  // ggml's generic float steps are ours (else it sums 8 float lanes per super-block)
  };
  const Case cases[] = {
      {GgmlType::Q4_0, "ggml_vec_dot_q4_0_q8_0_generic", false}, {GgmlType::Q4_1, "ggml_vec_dot_q4_1_q8_1_generic", true},
      {GgmlType::Q5_0, "ggml_vec_dot_q5_0_q8_0_generic", false}, {GgmlType::Q5_1, "ggml_vec_dot_q5_1_q8_1_generic", true},
      {GgmlType::Q8_0, "ggml_vec_dot_q8_0_q8_0_generic", false}, {GgmlType::IQ4_NL, "ggml_vec_dot_iq4_nl_q8_0_generic", false},
      {GgmlType::Q2_K, "ggml_vec_dot_q2_K_q8_K_generic", true},  {GgmlType::Q3_K, "ggml_vec_dot_q3_K_q8_K_generic", false},
      {GgmlType::Q4_K, "ggml_vec_dot_q4_K_q8_K_generic", false}, {GgmlType::Q5_K, "ggml_vec_dot_q5_K_q8_K_generic", false},
      {GgmlType::Q6_K, "ggml_vec_dot_q6_K_q8_K_generic", false}, {GgmlType::IQ4_XS, "ggml_vec_dot_iq4_xs_q8_K_generic", false},
  };
  using Init = void (*)();
  if (auto init = reinterpret_cast<Init>(dlsym(h, "ggml_cpu_init"))) init();
  std::mt19937 rng(11);
  int exact = 0, total = 0, same_formula_mismatch = 0;
  for (const Case& c : cases) {
    auto dot = reinterpret_cast<VecDot>(dlsym(h, c.fn));
    ASSERT_NE(dot, nullptr) << c.fn;
    const MatVecKernel* k = ScalarMatVecKernel(c.type);
    const GgmlTypeLayout l = GgmlLayout(c.type);
    for (int64_t cols : {256, 512, 2048}) {
      const int64_t rows = 9;
      const size_t row_bytes = static_cast<size_t>(cols / l.block_size) * l.type_size;
      std::vector<uint8_t> w(row_bytes * rows);
      RandomWeights(c.type, w.data(), rows * cols, rng);
      const std::vector<float> x = RandomActivations(cols, rng);
      PreparedActivation act;
      k->prepare(x.data(), cols, &act);
      std::vector<float> y(rows), wrow(cols), xq(cols);
      k->rows(w.data(), row_bytes, act, y.data(), 0, rows);
      testing::DequantizeAct(VecDotFormat(c.type), act.quantized.data(), x.data(), xq.data(), cols);
      for (int64_t r = 0; r < rows; ++r) {
        float g = 0;
        dot(static_cast<int>(cols), &g, 0, w.data() + r * row_bytes, 0, act.quantized.data(), 0, 1);
        ++total;
        if (FloatBits(g) == FloatBits(y[r])) {
          ++exact;
          continue;
        }
        // Not identical: the shipped library is built with FMA contraction (its generic loops end in
        // vfmadd231ss: one rounding fewer per block), our Q4_0/Q5_0/Q8_0/IQ4_NL sum blocks lane-strided
        // instead of in one chain, and for Q3_K..Q6_K / IQ4_XS ggml sums 8 float lanes per super-block. Either
        // way each block's float terms pass through at most (nb + 16) roundings (nb = blocks of the row) and are
        // bounded by the block's sum |scale*q*q8| <= sum |w x| + |min terms|, so allow (nb + 16) roundings of
        // 4 * sum_c |w_c xq_c| (the 4 covers cancellation between the scale and min terms).
        same_formula_mismatch += c.same_formula;
        ExactDecode(c.type, w.data() + r * row_bytes, wrow.data(), cols);
        double mag = 0;
        for (int64_t i = 0; i < cols; ++i) mag += std::fabs(static_cast<double>(wrow[i]) * xq[i]);
        const double tol = static_cast<double>(cols / l.block_size + 16) * std::ldexp(1.0, -24) * 4 * mag;
        EXPECT_LE(std::fabs(static_cast<double>(g) - y[r]), tol) << c.fn << " cols " << cols << " row " << r;
      }
    }
  }
  std::printf("ggml generic vec_dot: %d of %d rows bit-identical to the scalar spec (%d of the same-formula types "
              "differ only by ggml's FMA contraction)\n", exact, total, same_formula_mismatch);
}

}  // namespace
}  // namespace qforge
#endif

// Tests of the k-quant family (Q2_K … Q6_K): decoding bit-exact with ggml over random and edge blocks,
// packing round-trips, encoder error never above ggml's (plain and importance-weighted, on real and
// synthetic weights), and properties (determinism, zeros, nearest-level rounding, error bounds, huge inputs).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "ggml_reference.h"
#include "k_quants_internal.h"
#include "qforge/core/fp16.h"
#include "qforge/quant/k_blocks.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

using kquant::KValues;

constexpr GgmlType kKTypes[] = {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

const QuantType& Row(GgmlType t) {
  const QuantType* q = FindQuantType(t);
  EXPECT_NE(q, nullptr) << GgmlTypeName(t);
  return *q;
}
size_t BlockBytes(GgmlType t) { return GgmlLayout(t).type_size; }

std::vector<uint8_t> Encode(GgmlType t, const std::vector<float>& x, const float* imp = nullptr, int64_t row = 0) {
  std::vector<uint8_t> out(x.size() / kKSuper * BlockBytes(t));
  if (row == 0) row = static_cast<int64_t>(x.size());
  for (size_t r = 0; r < x.size() / row; ++r)
    Row(t).encode(x.data() + r * row, out.data() + r * row / kKSuper * BlockBytes(t), row, imp);
  return out;
}
std::vector<float> Decode(GgmlType t, const std::vector<uint8_t>& q) {
  std::vector<float> y(q.size() / BlockBytes(t) * kKSuper);
  Row(t).decode(q.data(), y.data(), static_cast<int64_t>(y.size()));
  return y;
}

// Byte offsets of the fp16 fields (d, dmin) inside each block, to plant edge values.
std::vector<size_t> HalfOffsets(GgmlType t) {
  switch (t) {
    case GgmlType::Q2_K: return {offsetof(block_q2_K, d), offsetof(block_q2_K, dmin)};
    case GgmlType::Q3_K: return {offsetof(block_q3_K, d)};
    case GgmlType::Q4_K: return {offsetof(block_q4_K, d), offsetof(block_q4_K, dmin)};
    case GgmlType::Q5_K: return {offsetof(block_q5_K, d), offsetof(block_q5_K, dmin)};
    default: return {offsetof(block_q6_K, d)};
  }
}

TEST(KQuants, RegistryRowsMatchLayouts) {
  EXPECT_EQ(KQuantTypes().size(), 5u);
  EXPECT_EQ(BlockBytes(GgmlType::Q2_K), sizeof(block_q2_K));
  EXPECT_EQ(BlockBytes(GgmlType::Q3_K), sizeof(block_q3_K));
  EXPECT_EQ(BlockBytes(GgmlType::Q4_K), sizeof(block_q4_K));
  EXPECT_EQ(BlockBytes(GgmlType::Q5_K), sizeof(block_q5_K));
  EXPECT_EQ(BlockBytes(GgmlType::Q6_K), sizeof(block_q6_K));
  for (GgmlType t : kKTypes) EXPECT_EQ(GgmlLayout(t).block_size, 256u);
}

// Random bytes unpack and repack to the same bytes: every bit of every k-quant block is meaningful.
TEST(KQuants, PackUnpackRoundTripsRandomBytes) {
  std::mt19937 rng(7);
  auto check = [&](auto block, auto unpack, auto pack) {
    for (int it = 0; it < 500; ++it) {
      decltype(block) b, b2;
      auto* p = reinterpret_cast<uint8_t*>(&b);
      for (size_t i = 0; i < sizeof(b); ++i) p[i] = static_cast<uint8_t>(rng());
      KValues v;
      unpack(b, &v);
      pack(v, &b2);
      ASSERT_EQ(std::memcmp(&b, &b2, sizeof(b)), 0) << "iteration " << it;
    }
  };
  check(block_q2_K{}, kquant::UnpackQ2K, kquant::PackQ2K);
  check(block_q3_K{}, kquant::UnpackQ3K, kquant::PackQ3K);
  check(block_q4_K{}, kquant::UnpackQ4K, kquant::PackQ4K);
  check(block_q5_K{}, kquant::UnpackQ5K, kquant::PackQ5K);
  check(block_q6_K{}, kquant::UnpackQ6K, kquant::PackQ6K);
}

// Edge blocks: zeros, all ones, ±max fp16 scales, Inf/NaN scales, subnormal scales, one outlier byte.
std::vector<uint8_t> EdgeBlocks(GgmlType t, std::mt19937& rng) {
  const size_t bb = BlockBytes(t);
  std::vector<uint8_t> out;
  const uint16_t halves[] = {0x0000, 0x8000, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe55,
                             0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xbc00, 0x1234};
  for (uint16_t hd : halves) {
    for (uint16_t hm : {uint16_t{0x0000}, uint16_t{0x3c00}, hd, uint16_t{0x8001}}) {
      for (int fill : {0x00, 0xff, -1}) {
        std::vector<uint8_t> b(bb);
        for (auto& c : b) c = static_cast<uint8_t>(fill >= 0 ? fill : static_cast<int>(rng()));
        const auto offs = HalfOffsets(t);
        std::memcpy(&b[offs[0]], &hd, 2);
        if (offs.size() > 1) std::memcpy(&b[offs[1]], &hm, 2);
        out.insert(out.end(), b.begin(), b.end());
      }
    }
  }
  std::vector<uint8_t> one(bb, 0);  // one outlier byte somewhere in the quants
  one[bb / 2] = 0xff;
  const uint16_t h1 = 0x3c00;
  for (size_t o : HalfOffsets(t)) std::memcpy(&one[o], &h1, 2);
  out.insert(out.end(), one.begin(), one.end());
  return out;
}

TEST(KQuants, DecodeBitExactWithGgml) {
  if (!testing::kHaveGgmlReference) GTEST_SKIP() << "llama.cpp referee not built";
#if defined(QFORGE_HAVE_REFEREE)
  for (GgmlType t : kKTypes) {
    std::mt19937 rng(1234 + static_cast<int>(t));
    std::vector<uint8_t> q(4000 * BlockBytes(t));
    for (auto& c : q) c = static_cast<uint8_t>(rng());  // random bytes, incl. random fp16 d/dmin
    const auto edges = EdgeBlocks(t, rng);
    q.insert(q.end(), edges.begin(), edges.end());
    const auto ours = Decode(t, q);
    const auto ref = testing::GgmlDecode(t, q.data(), static_cast<int64_t>(ours.size()));
    size_t mismatches = 0, first = 0;
    for (size_t i = 0; i < ours.size(); ++i)
      if (FloatBits(ours[i]) != FloatBits(ref[i]) && mismatches++ == 0) first = i;
    EXPECT_EQ(mismatches, 0u) << GgmlTypeName(t) << " first at " << first << ": " << ours[first] << " vs "
                              << ref[first];
  }
#endif
}

// ---- datasets --------------------------------------------------------------------------------------------

// All float32 tensors of a llama2.c checkpoint (28-byte header of 7 int32), trimmed to whole rows.
std::vector<float> LoadLlama2c(const std::string& path, size_t row) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  f.seekg(0, std::ios::end);
  const auto size = static_cast<size_t>(f.tellg());
  if (size < 28) return {};
  std::vector<float> w((size - 28) / 4);
  f.seekg(28);
  f.read(reinterpret_cast<char*>(w.data()), static_cast<std::streamsize>(w.size() * 4));
  w.resize(w.size() / row * row);
  return w;
}

std::vector<float> GaussianWithOutliers(int rows, int cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 0.02f);
  std::uniform_int_distribution<int> col(0, cols - 1);
  std::uniform_real_distribution<float> mag(0.2f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows) * cols);
  for (auto& v : x) v = g(rng);
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < 6; ++k) x[static_cast<size_t>(r) * cols + col(rng)] = (rng() & 1 ? 1.f : -1.f) * mag(rng);
  return x;
}

std::vector<float> RandomImportance(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.5f);
  std::vector<float> w(n);
  for (auto& v : w) v = std::exp(g(rng));  // positive, spread over ~2 decades
  return w;
}

// sqrt(Σ w (x − x̂)² / Σ w) with the importance repeated per row (w = 1 without importance).
double WeightedRmse(const std::vector<float>& x, const std::vector<float>& y, const float* imp, size_t row) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double w = imp ? imp[i % row] : 1.0;
    const double d = static_cast<double>(x[i]) - y[i];
    num += w * d * d;
    den += w;
  }
  return std::sqrt(num / den);
}

struct Dataset {
  std::string name;
  std::vector<float> x;
  size_t row;
};

std::vector<Dataset> Datasets() {
  std::vector<Dataset> d;
  const std::string shared = QFORGE_SHARED_DIR;
  d.push_back({"stories260K", LoadLlama2c(shared + "/models/stories260K/stories260K.bin", 1024), 1024});
  d.push_back({"babyllama105", LoadLlama2c(shared + "/models/babyllama-tok105/babyllama105.bin", 1024), 1024});
  d.push_back({"gauss4096+outliers", GaussianWithOutliers(48, 4096, 99), 4096});
  return d;
}

bool PrintRmse() {
  const char* e = std::getenv("QFORGE_PRINT_RMSE");
  return e && std::string(e) == "1";
}

TEST(KQuants, EncoderErrorNotAboveGgml) {
  if (!testing::kHaveGgmlReference) GTEST_SKIP() << "llama.cpp referee not built";
#if defined(QFORGE_HAVE_REFEREE)
  for (const Dataset& ds : Datasets()) {
    ASSERT_FALSE(ds.x.empty()) << ds.name << " could not be read";
    const auto imp = RandomImportance(ds.row, 4242);
    const int64_t nrows = static_cast<int64_t>(ds.x.size() / ds.row);
    if (PrintRmse())
      std::printf("\n%s (%zu weights, rows of %zu)\ntype | ours RMSE | ggml RMSE | ours wRMSE | ggml wRMSE\n",
                  ds.name.c_str(), ds.x.size(), ds.row);
    for (GgmlType t : kKTypes) {
      const auto ours = Decode(t, Encode(t, ds.x, nullptr, static_cast<int64_t>(ds.row)));
      const auto ref = testing::GgmlRoundTrip(t, ds.x.data(), nrows, static_cast<int64_t>(ds.row));
      const auto ours_w = Decode(t, Encode(t, ds.x, imp.data(), static_cast<int64_t>(ds.row)));
      const auto ref_w = testing::GgmlRoundTrip(t, ds.x.data(), nrows, static_cast<int64_t>(ds.row), imp.data());
      const double r_ours = WeightedRmse(ds.x, ours, nullptr, ds.row), r_ref = WeightedRmse(ds.x, ref, nullptr, ds.row);
      const double w_ours = WeightedRmse(ds.x, ours_w, imp.data(), ds.row);
      const double w_ref = WeightedRmse(ds.x, ref_w, imp.data(), ds.row);
      if (PrintRmse())
        std::printf("%s | %.6e | %.6e | %.6e | %.6e\n", std::string(GgmlTypeName(t)).c_str(), r_ours, r_ref, w_ours,
                    w_ref);
      EXPECT_LE(r_ours, r_ref * (1 + 1e-6)) << ds.name << " " << GgmlTypeName(t);
      EXPECT_LE(w_ours, w_ref * (1 + 1e-6)) << ds.name << " " << GgmlTypeName(t) << " weighted";
    }
  }
#endif
}

// Timing against ggml on one 4096×4096 matrix: opt-in (QFORGE_BENCH_KQ=1), it takes seconds per type.
// Single-threaded on both sides; on a loaded machine compare the ratios, not the seconds.
TEST(KQuants, EncoderTimingVsGgml) {
  const char* e = std::getenv("QFORGE_BENCH_KQ");
  if (!e || std::string(e) != "1") GTEST_SKIP() << "set QFORGE_BENCH_KQ=1";
#if defined(QFORGE_HAVE_REFEREE)
  const char* r = std::getenv("QFORGE_BENCH_KQ_ROWS");  // fewer rows for a quick look
  const int rows = r ? std::atoi(r) : 4096;
  const auto x = GaussianWithOutliers(rows, 4096, 5);
  const auto imp = RandomImportance(4096, 6);
  using Clock = std::chrono::steady_clock;
  auto secs = [](Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); };
  std::printf("type | ours s | ggml s | ours+imp s | ggml+imatrix s\n");
  for (GgmlType t : kKTypes) {
    auto t0 = Clock::now();
    Encode(t, x, nullptr, 4096);
    const double a = secs(t0);
    t0 = Clock::now();
    testing::GgmlEncode(t, x.data(), rows, 4096);
    const double b = secs(t0);
    t0 = Clock::now();
    Encode(t, x, imp.data(), 4096);
    const double c = secs(t0);
    t0 = Clock::now();
    testing::GgmlEncode(t, x.data(), rows, 4096, imp.data());
    const double d = secs(t0);
    std::printf("%s | %.2f | %.2f | %.2f | %.2f\n", std::string(GgmlTypeName(t)).c_str(), a, b, c, d);
  }
#endif
}

// ---- properties ------------------------------------------------------------------------------------------

TEST(KQuants, EncodeIsDeterministic) {
  const auto x = GaussianWithOutliers(2, 4096, 11);
  const auto imp = RandomImportance(4096, 12);
  for (GgmlType t : kKTypes) {
    EXPECT_EQ(Encode(t, x), Encode(t, x)) << GgmlTypeName(t);
    EXPECT_EQ(Encode(t, x, imp.data(), 4096), Encode(t, x, imp.data(), 4096)) << GgmlTypeName(t);
  }
}

// Without importance the search sums Σ L and Σ L² in float (exact for integers below 2^24) instead of the
// double sums of the weighted search. Doubling every weight scales every sum, error and normal equation by
// an exact power of two, so the weighted search with w = 2 must choose exactly what the unit path does.
TEST(KQuants, UnitWeightPathMatchesWeightedSearch) {
  const auto x = GaussianWithOutliers(4, 4096, 51);
  const std::vector<float> ones(kKSuper, 1.f), twos(kKSuper, 2.f);
  const kquant::KSpec specs[] = {kquant::kSpecQ2K, kquant::kSpecQ3K, kquant::kSpecQ4K, kquant::kSpecQ5K,
                                 kquant::kSpecQ6K};
  for (const kquant::KSpec& sp : specs) {
    for (size_t b = 0; b < x.size() / kKSuper; ++b) {
      KValues unit, weighted;
      kquant::EncodeKBlock(sp, x.data() + b * kKSuper, ones.data(), &unit);
      kquant::EncodeKBlock(sp, x.data() + b * kKSuper, twos.data(), &weighted);
      ASSERT_EQ(unit.d, weighted.d) << "block " << b << " sub-blocks " << sp.n_sub << " lmax " << sp.lmax;
      ASSERT_EQ(unit.dmin, weighted.dmin) << "block " << b;
      ASSERT_EQ(std::memcmp(unit.ls, weighted.ls, sizeof unit.ls), 0) << "block " << b;
      ASSERT_EQ(std::memcmp(unit.lm, weighted.lm, sizeof unit.lm), 0) << "block " << b;
      ASSERT_EQ(std::memcmp(unit.L, weighted.L, sizeof unit.L), 0) << "block " << b;
    }
  }
}

TEST(KQuants, AllZeroGivesZero) {
  const std::vector<float> x(1024, 0.f);
  const std::vector<float> imp(1024, 1.f), zimp(1024, 0.f);
  for (GgmlType t : kKTypes)
    for (const float* w : {static_cast<const float*>(nullptr), imp.data(), zimp.data()})
      for (float y : Decode(t, Encode(t, x, w))) ASSERT_EQ(y, 0.f) << GgmlTypeName(t);
}

// Error bounds. With amax = max|x| over the super-block, the search's round-to-nearest candidate
// already achieves (and the chosen configuration, which minimises the squared error, is no worse in RMS):
//  level step: affine types map [min(x,0), max x] (width ≤ 2·amax) onto nq steps: half-step ≤ amax/nq;
//              Q3_K/Q6_K map ±amax onto ~4 / ~32 steps of one sign: half-step ≤ amax/8, amax/64.
//  sub-scale rounding: ls = round(s/d) with d ≈ s_max/smax moves each level by ≤ d/2 per unit of L, i.e.
//              ≤ |L|max·d/2 ≈ amax/(2·smax)·(|L|max/nq) ≤ amax/(2·smax)·(2 for affine ranges);
//  min rounding (affine): ≤ dmin/2 ≤ amax/(2·smax).
// Bound factors (× amax): Q2_K 1/3+2/30+1/30 = .433, Q3_K 1/8+1/64 = .141, Q4_K 1/15+3/126 = .091,
// Q5_K 1/31+3/126 = .056, Q6_K 1/64+1/256 = .020. The RMS per super-block must stay below these; the
// fp16 rounding of d/dmin (relative 2^-11) is far inside the slack.
double BoundFactor(GgmlType t) {
  switch (t) {
    case GgmlType::Q2_K: return 0.433;
    case GgmlType::Q3_K: return 0.141;
    case GgmlType::Q4_K: return 0.091;
    case GgmlType::Q5_K: return 0.056;
    default: return 0.020;
  }
}

TEST(KQuants, RoundTripErrorBounded) {
  std::mt19937 rng(21);
  std::vector<float> x = GaussianWithOutliers(4, 4096, 22);
  std::uniform_real_distribution<float> u(-3.f, 5.f);
  for (int i = 0; i < 4096; ++i) x.push_back(u(rng));
  for (GgmlType t : kKTypes) {
    const auto y = Decode(t, Encode(t, x));
    for (size_t b = 0; b < x.size() / kKSuper; ++b) {
      double amax = 0, se = 0;
      for (int i = 0; i < kKSuper; ++i) {
        amax = std::max(amax, std::fabs(static_cast<double>(x[b * kKSuper + i])));
        const double d = x[b * kKSuper + i] - y[b * kKSuper + i];
        se += d * d;
      }
      ASSERT_LE(std::sqrt(se / kKSuper), BoundFactor(t) * amax) << GgmlTypeName(t) << " block " << b;
    }
  }
}

// Given the stored scales, every element sits on the nearest level of its sub-block's grid (clamped to the
// grid's ends): |x − x̂| ≤ step/2 inside the grid, up to float rounding of (x + m)/step.
TEST(KQuants, LevelsAreNearestGivenScales) {
  const auto x = GaussianWithOutliers(2, 4096, 31);
  const auto imp = RandomImportance(4096, 32);
  for (GgmlType t : kKTypes) {
    for (const float* w : {static_cast<const float*>(nullptr), imp.data()}) {
      const auto q = Encode(t, x, w, 4096);
      const auto y = Decode(t, q);
      const std::vector<float> one(q.begin(), q.end());
      for (size_t b = 0; b < x.size() / kKSuper; ++b) {
        KValues v;
        const uint8_t* p = q.data() + b * BlockBytes(t);
        kquant::KSpec sp{};
        switch (t) {
          case GgmlType::Q2_K: { block_q2_K k; std::memcpy(&k, p, sizeof k); kquant::UnpackQ2K(k, &v); sp = kquant::kSpecQ2K; break; }
          case GgmlType::Q3_K: { block_q3_K k; std::memcpy(&k, p, sizeof k); kquant::UnpackQ3K(k, &v); sp = kquant::kSpecQ3K; break; }
          case GgmlType::Q4_K: { block_q4_K k; std::memcpy(&k, p, sizeof k); kquant::UnpackQ4K(k, &v); sp = kquant::kSpecQ4K; break; }
          case GgmlType::Q5_K: { block_q5_K k; std::memcpy(&k, p, sizeof k); kquant::UnpackQ5K(k, &v); sp = kquant::kSpecQ5K; break; }
          default: { block_q6_K k; std::memcpy(&k, p, sizeof k); kquant::UnpackQ6K(k, &v); sp = kquant::kSpecQ6K; break; }
        }
        const float d = F16ToF32(v.d), dmin = sp.affine ? F16ToF32(v.dmin) : 0.f;
        for (int e = 0; e < kKSuper; ++e) {
          const int j = e / sp.sub_len;
          const double step = std::fabs(static_cast<double>(d) * v.ls[j]);
          const double lo = std::min(d * v.ls[j] * sp.lmin, d * v.ls[j] * sp.lmax) - dmin * v.lm[j];
          const double hi = std::max(d * v.ls[j] * sp.lmin, d * v.ls[j] * sp.lmax) - dmin * v.lm[j];
          const double xi = x[b * kKSuper + e], yi = y[b * kKSuper + e];
          const double target = std::clamp(xi, lo, hi);
          ASSERT_LE(std::fabs(target - yi), step / 2 * (1 + 1e-5) + 1e-6 * std::fabs(xi))
              << GgmlTypeName(t) << " block " << b << " element " << e;
        }
      }
    }
  }
}

// ggml's encoders let a block's fp16 scale overflow to Inf on inputs beyond ~1e6 and then decode Inf/NaN;
// ours saturate d/dmin at 65504 so the output stays finite (the block is clipped, not poisoned).
TEST(KQuants, HugeValuesStayFinite) {
  std::vector<float> x = GaussianWithOutliers(1, 1024, 41);
  x[3] = 1e30f;
  x[300] = -1e30f;
  for (int i = 512; i < 768; ++i) x[i] = (i % 2 ? 1e30f : -3e29f);
  const auto imp = RandomImportance(1024, 42);
  for (GgmlType t : kKTypes) {
    for (const float* w : {static_cast<const float*>(nullptr), imp.data()}) {
      const auto y = Decode(t, Encode(t, x, w));
      for (size_t i = 0; i < y.size(); ++i) ASSERT_TRUE(std::isfinite(y[i])) << GgmlTypeName(t) << " at " << i;
    }
#if defined(QFORGE_HAVE_REFEREE)
    const auto ref = testing::GgmlRoundTrip(t, x.data(), 1, 1024);
    size_t nonfinite = 0;
    for (float v : ref) nonfinite += !std::isfinite(v);
    std::printf("%s: ggml decodes %zu of 1024 values of the 1e30 row as Inf/NaN; qforge 0\n",
                std::string(GgmlTypeName(t)).c_str(), nonfinite);
#endif
  }
}

}  // namespace
}  // namespace qforge

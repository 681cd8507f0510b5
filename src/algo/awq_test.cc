// AWQ: unit scales are RTN; folding scales keeps the float model's function; on held-out activations the
// searched scales lower the output error ‖W·Xᵀ − Ŵ·Xᵀ‖² against RTN at the same type, on real weights
// (stories260K, BabyLlama) and on a synthetic layer with heavy-tailed, correlated activations.
#include "qforge/algo/awq.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "layer_forward_test_util.h"
#include "qforge/formats/gguf.h"
#include "qforge/pipeline/tensor_codec.h"

namespace qforge {
namespace {

using namespace testing_util;

const std::string kModels = std::string(QFORGE_SHARED_DIR) + "/models";

std::vector<float> Gaussian(size_t n, double sd, std::mt19937_64& rng) {
  std::normal_distribution<double> d(0.0, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(d(rng));
  return v;
}

TEST(Awq, UnitScalesAreRtnByteForByte) {
  const uint64_t seed = 20260101;
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const int64_t rows = 48, cols = 256, n = 64;
  std::vector<float> w = Gaussian(rows * cols, 0.05, rng), x = Gaussian(n * cols, 1.0, rng);
  std::vector<double> mean_abs(cols);
  for (int64_t c = 0; c < cols; ++c) mean_abs[c] = 0.1 + std::fabs(x[c]);
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::IQ4_NL}) {
    AwqOptions o;
    o.force_unit = true;
    AwqLinear l{"w", w.data(), rows, type};
    auto r = SearchAwqScales(std::span<const AwqLinear>(&l, 1), cols, mean_abs, x.data(), n, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->alpha, 0.0);
    for (float s : r->scales) ASSERT_EQ(s, 1.0f);
    // Quantizing W·diag(1) is quantizing W.
    std::vector<float> scaled = w;
    ScaleColumns(scaled.data(), rows, cols, r->scales);
    auto nbytes = GgufTensorBytes(type, {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)});
    ASSERT_TRUE(nbytes.ok());
    std::vector<uint8_t> a(*nbytes), b(*nbytes);
    ASSERT_TRUE(EncodeTensor(type, w.data(), w.size(), cols, a.data()).ok());
    ASSERT_TRUE(EncodeTensor(type, scaled.data(), w.size(), cols, b.data()).ok());
    EXPECT_EQ(a, b) << GgmlTypeName(type);
    EXPECT_EQ(r->error, r->error_rtn);
  }
  EXPECT_EQ(AwqScalesForAlpha({0.5, 2.0, 8.0}, 0.0), (std::vector<float>{1, 1, 1}));
}

TEST(Awq, ScalesStraddleOne) {
  std::vector<float> s = AwqScalesForAlpha({0.25, 1.0, 4.0}, 1.0);
  // sqrt(max·min) = 1: the scales are the means themselves.
  EXPECT_NEAR(s[0], 0.25, 1e-6);
  EXPECT_NEAR(s[1], 1.0, 1e-6);
  EXPECT_NEAR(s[2], 4.0, 1e-6);
  s = AwqScalesForAlpha({0.0, 1.0}, 0.5);  // a dead column is raised to 1e-4 of the maximum
  EXPECT_TRUE(std::isfinite(1.0f / s[0]));
}

// Folding: the unquantized model computes the same logits. Tolerance: each folded pair (norm weight / s,
// weight column · s) adds at most two float roundings (2^-24 relative each) per product; with dot
// products over 64-352 terms and 5 blocks, logits of magnitude ~10 move by ~1e-5. Bound 1e-3; measured
// maximum printed. (A fold on the wrong axis moves logits by O(1).)
TEST(Awq, FoldingKeepsTheFloatModel) {
  auto src = OpenModelSource(kModels + "/stories260K/stories260K.gguf", {});
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  auto f = LoadFloatModel(*src);
  ASSERT_TRUE(f.ok());
  auto chunks = StoryChunks(*src, 64, 64);
  ASSERT_TRUE(chunks.ok());
  const std::vector<float> before = ModelLogits(*f, (*chunks)[0]);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-2.0, 2.0);  // s = 2^u: scales in [1/4, 4]
  FloatModel folded = *f;
  int groups = 0;
  for (auto& b : folded.blocks) {
    for (AwqGroup g : {AwqGroup::kAttnQkv, AwqGroup::kAttnOutput, AwqGroup::kFfnGateUp, AwqGroup::kFfnDown}) {
      if (!AwqGroupFoldable(f->shape, g)) continue;
      const int cols = g == AwqGroup::kFfnDown ? f->shape.n_ff : f->shape.n_embd;
      std::vector<float> s(cols);
      for (auto& v : s) v = static_cast<float>(std::exp2(u(rng)));
      FoldAwqScales(f->shape, g, s, &b);
      ++groups;
    }
  }
  EXPECT_EQ(groups, 3 * f->shape.n_layer);  // GQA model: attn_output cannot be folded
  const std::vector<float> after = ModelLogits(folded, (*chunks)[0]);
  double max_diff = 0;
  for (size_t i = 0; i < before.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(before[i] - after[i])));
  std::printf("folded stories260K: max |logit diff| %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-3);
}

// The same on a synthetic block without GQA and with Qwen2-style biases, so the attn_output fold (into
// attn_v's rows and bias) is exercised too.
TEST(Awq, FoldingKeepsASyntheticBlockWithBiases) {
  BlockShape s;
  s.arch = "qwen2";
  s.n_embd = 64, s.n_ff = 96, s.n_layer = 1, s.n_head = 4, s.n_head_kv = 4, s.head_dim = 16, s.n_rot = 16;
  s.neox_rope = true;
  std::mt19937_64 rng(11);
  BlockWeights w;
  const int e = s.n_embd, ff = s.n_ff;
  w.attn_norm = Gaussian(e, 0.3, rng), w.ffn_norm = Gaussian(e, 0.3, rng);
  for (auto& v : w.attn_norm) v += 1;
  for (auto& v : w.ffn_norm) v += 1;
  w.bq = Gaussian(e, 0.1, rng), w.bk = Gaussian(e, 0.1, rng), w.bv = Gaussian(e, 0.1, rng);
  w.wq = Gaussian(e * e, 0.15, rng), w.wk = Gaussian(e * e, 0.15, rng), w.wv = Gaussian(e * e, 0.15, rng);
  w.wo = Gaussian(e * e, 0.15, rng), w.gate = Gaussian(ff * e, 0.15, rng), w.up = Gaussian(ff * e, 0.15, rng);
  w.down = Gaussian(e * ff, 0.1, rng);
  const int64_t n = 40;
  std::vector<float> h0 = Gaussian(n * e, 1.0, rng), a = h0, b = h0;
  BlockForward(s, w, a.data(), n);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  for (AwqGroup g : {AwqGroup::kAttnQkv, AwqGroup::kAttnOutput, AwqGroup::kFfnGateUp, AwqGroup::kFfnDown}) {
    ASSERT_TRUE(AwqGroupFoldable(s, g));
    std::vector<float> sc(g == AwqGroup::kFfnDown ? ff : e);
    for (auto& v : sc) v = static_cast<float>(std::exp2(u(rng)));
    FoldAwqScales(s, g, sc, &w);
  }
  BlockForward(s, w, b.data(), n);
  double max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(a[i] - b[i])));
  std::printf("folded synthetic qwen2 block: max |diff| %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-4);  // one block, outputs of magnitude ~3: float rounding is ~1e-6
}

// ---- held-out output error, AWQ vs RTN ----

struct ErrorTotals {
  double rtn = 0, awq = 0;
};

// Searches on `train` rows, measures on `held` rows; returns the summed squared errors of the group.
ErrorTotals GroupHeldOutError(const std::vector<AwqLinear>& group, int64_t cols, const std::vector<float>& train,
                              const std::vector<float>& held) {
  const int64_t nt = static_cast<int64_t>(train.size()) / cols, nh = static_cast<int64_t>(held.size()) / cols;
  std::vector<double> mean_abs(cols, 0.0);
  for (int64_t t = 0; t < nt; ++t)
    for (int64_t c = 0; c < cols; ++c) mean_abs[c] += std::fabs(train[t * cols + c]) / nt;
  auto r = SearchAwqScales(group, cols, mean_abs, train.data(), nt, AwqOptions{});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  ErrorTotals e;
  if (!r.ok()) return e;
  for (const AwqLinear& l : group) {
    auto rtn = AwqOutputError(l, cols, {}, held.data(), nh, 1);
    auto awq = AwqOutputError(l, cols, r->scales, held.data(), nh, 1);
    EXPECT_TRUE(rtn.ok() && awq.ok());
    e.rtn += *rtn;
    e.awq += *awq;
  }
  return e;
}

std::vector<std::vector<int32_t>> ChunksOfText(const SourceModel& model, const std::string& text, int64_t tokens,
                                               int ctx) {
  auto tok = Tokenizer::FromMetadata(model.metadata);
  EXPECT_TRUE(tok.ok());
  CalibrationOptions o;
  o.tokens = tokens;
  o.ctx = ctx;
  auto c = CalibrationChunksFromText(text, "tinystories part", *tok, o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : std::vector<std::vector<int32_t>>{};
}

// Runs the float model over the chunks and returns, per block, the concatenated inputs of its groups.
std::vector<std::vector<BlockInputs>> CollectInputs(const FloatModel& f,
                                                    const std::vector<std::vector<int32_t>>& chunks) {
  std::vector<std::vector<BlockInputs>> per_block(f.blocks.size());
  for (const auto& c : chunks) {
    std::vector<float> h = Embed(f, c);
    for (size_t l = 0; l < f.blocks.size(); ++l) {
      BlockInputs in;
      BlockForward(f.shape, f.blocks[l], h.data(), static_cast<int64_t>(c.size()), &in);
      per_block[l].push_back(std::move(in));
    }
  }
  return per_block;
}

std::vector<float> Concat(const std::vector<BlockInputs>& v, std::vector<float> BlockInputs::*field) {
  std::vector<float> out;
  for (const auto& b : v) out.insert(out.end(), (b.*field).begin(), (b.*field).end());
  return out;
}

void HeldOutOnRealModel(const std::string& path, const std::string& label) {
  auto src = OpenModelSource(path, {});
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  auto f = LoadFloatModel(*src);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  std::ifstream in(std::string(QFORGE_SHARED_DIR) + "/data/tinystories/tinystories_valid_head.txt");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  // Calibration on the first 40 kB of the text, measurement on the next 40 kB: no token is in both (and
  // only 80 kB get tokenized: BabyLlama's vocabulary is single characters).
  ASSERT_GT(text.size(), 80000u);
  const auto train = CollectInputs(*f, ChunksOfText(*src, text.substr(0, 40000), 1024, 128));
  const auto held = CollectInputs(*f, ChunksOfText(*src, text.substr(40000, 40000), 1024, 128));
  const BlockShape& s = f->shape;
  const int64_t e = s.n_embd, kv = s.kv_dim(), ff = s.n_ff;
  const GgmlType type = GgmlType::Q4_0;
  ErrorTotals total;
  for (size_t l = 0; l < f->blocks.size(); ++l) {
    const BlockWeights& w = f->blocks[l];
    struct G {
      const char* name;
      AwqGroup id;
      std::vector<AwqLinear> linears;
      std::vector<float> BlockInputs::*input;
      int64_t cols;
    };
    std::vector<G> groups = {
        {"attn_qkv", AwqGroup::kAttnQkv, {{"q", w.wq.data(), e, type}, {"k", w.wk.data(), kv, type},
                                           {"v", w.wv.data(), kv, type}}, &BlockInputs::attn_in, e},
        {"attn_output", AwqGroup::kAttnOutput, {{"o", w.wo.data(), e, type}}, &BlockInputs::attn_out, e},
        {"ffn_gate_up", AwqGroup::kFfnGateUp, {{"gate", w.gate.data(), ff, type}, {"up", w.up.data(), ff, type}},
         &BlockInputs::ffn_in, e},
        {"ffn_down", AwqGroup::kFfnDown, {{"down", w.down.data(), e, type}}, &BlockInputs::ffn_hidden, ff},
    };
    std::string line = fmt::format("{} block {} ({}):", label, l, GgmlTypeName(type));
    for (const G& g : groups) {
      if (!AwqGroupFoldable(s, g.id) || g.cols % 32 != 0) continue;  // GQA, or a row length Q4_0 cannot hold
      ErrorTotals t = GroupHeldOutError(g.linears, g.cols, Concat(train[l], g.input), Concat(held[l], g.input));
      line += fmt::format("  {} awq/rtn {:.3f}", g.name, t.awq / t.rtn);
      total.rtn += t.rtn;
      total.awq += t.awq;
    }
    std::printf("%s\n", line.c_str());
  }
  std::printf("%s: held-out output error AWQ/RTN (all groups, all blocks) = %.4f\n", label.c_str(),
              total.awq / total.rtn);
  EXPECT_LT(total.awq, total.rtn);
}

TEST(Awq, HeldOutErrorBelowRtnOnStories260K) {
  HeldOutOnRealModel(kModels + "/stories260K/stories260K.gguf", "stories260K");
}

TEST(Awq, HeldOutErrorBelowRtnOnBabyLlama) {
  HeldOutOnRealModel(kModels + "/babyllama-tok105/babyllama105.bin", "BabyLlama");
}

// Activations as LLMs show them: a few channels 10-30x larger than the rest (lognormal per-channel
// scales plus 4 outliers), Student-t(3) tails, correlated through a mixing matrix.
std::vector<float> HeavyTailed(int64_t n, int64_t cols, const std::vector<float>& scale,
                               const std::vector<float>& mix, std::mt19937_64& rng) {
  std::normal_distribution<double> z(0, 1);
  std::chi_squared_distribution<double> chi(3);
  std::vector<float> raw(n * cols), x(n * cols, 0.0f);
  for (auto& v : raw) v = static_cast<float>(z(rng) / std::sqrt(chi(rng) / 3));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < cols; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < cols; ++k) acc += raw[t * cols + k] * mix[k * cols + j];
      x[t * cols + j] = static_cast<float>(acc * scale[j]);
    }
  return x;
}

TEST(Awq, HeldOutErrorBelowRtnOnSyntheticHeavyTailedLayer) {
  const uint64_t seed = 424242;
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const int64_t cols = 256, rows = 128;
  std::lognormal_distribution<double> ln(0.0, 0.8);
  std::vector<float> scale(cols);
  for (auto& v : scale) v = static_cast<float>(ln(rng));
  for (int k = 0; k < 4; ++k) scale[(k * 67) % cols] *= 20.0f;
  std::vector<float> mix = Gaussian(cols * cols, 0.3 / std::sqrt(double(cols)), rng);
  for (int64_t j = 0; j < cols; ++j) mix[j * cols + j] += 1.0f;
  const std::vector<float> train = HeavyTailed(1024, cols, scale, mix, rng);
  const std::vector<float> held = HeavyTailed(1024, cols, scale, mix, rng);
  const std::vector<float> w = Gaussian(rows * cols, 1.0 / std::sqrt(double(cols)), rng);
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q3_K}) {
    ErrorTotals t = GroupHeldOutError({{"w", w.data(), rows, type}}, cols, train, held);
    std::printf("synthetic heavy-tailed layer %s: held-out AWQ/RTN = %.4f\n", std::string(GgmlTypeName(type)).c_str(),
                t.awq / t.rtn);
    EXPECT_LT(t.awq, t.rtn) << GgmlTypeName(type);
  }
}

}  // namespace
}  // namespace qforge

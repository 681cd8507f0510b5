// The runtime against llama.cpp on the same GGUF: greedy tokens equal, per-position logits close.
//
// Tolerance for F32 weights: both sides compute the same float32 math with an F16 KV cache, F16-rounded
// queries and attention weights (llama.cpp's non-flash CPU attention); they differ in summation order (ggml
// sums in SIMD lanes in float, we in double) and in how RoPE angles are formed (ggml multiplies the angle
// step by step in float: up to ~n_rot/2 ulps of the angle). Measured max |diff| on logits of magnitude ~10
// is 3.3e-3; 1e-2 leaves a 3x margin. Quantized weights:
// ggml also rounds activations to 8 bits (Q8_0 / Q8_K, step max|x|/127, error <= step/2 per element),
// which changes each dot product by up to ~0.4% relative; through the model logits move by up to a few
// 1e-2: 0.15 absolute is the bound used (measured maxima are printed).
#include "qforge/runtime/llama_context.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "llama_reference.h"
#include "qforge/algo/policy.h"
#include "qforge/formats/gguf.h"
#include "qforge/pipeline/quantize.h"
#include "qforge/runtime/sampler.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

const std::string kStories = std::string(QFORGE_SHARED_DIR) + "/models/stories260K/stories260K.gguf";

std::vector<int32_t> OurGreedy(LlamaContext& ctx, const std::vector<int32_t>& prompt, int n) {
  ctx.Reset();
  std::vector<float> logits;
  EXPECT_TRUE(ctx.Eval(prompt, false, &logits).ok());
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    int32_t t = Argmax(logits);
    out.push_back(t);
    EXPECT_TRUE(ctx.Eval(std::vector<int32_t>{t}, false, &logits).ok());
  }
  return out;
}

TEST(LlamaContext, RejectsBadTokensAndFullContext) {
  auto m = LlamaModel::Load(kStories);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  LlamaContext ctx(*m, 4, 1);
  std::vector<float> logits;
  EXPECT_FALSE(ctx.Eval(std::vector<int32_t>{512}, false, &logits).ok());
  EXPECT_FALSE(ctx.Eval(std::vector<int32_t>{-1}, false, &logits).ok());
  EXPECT_FALSE(ctx.Eval(std::vector<int32_t>{1, 2, 3, 4, 5}, false, &logits).ok());
  EXPECT_TRUE(ctx.Eval(std::vector<int32_t>{1, 2, 3, 4}, false, &logits).ok());
}

TEST(LlamaContext, ThreadCountDoesNotChangeLogits) {
  auto m = LlamaModel::Load(kStories);
  ASSERT_TRUE(m.ok());
  LlamaContext a(*m, 64, 1), b(*m, 64, 2);
  std::vector<int32_t> toks = {1, 400, 261, 300, 280, 290};
  std::vector<float> la, lb;
  ASSERT_TRUE(a.Eval(toks, true, &la).ok());
  ASSERT_TRUE(b.Eval(toks, true, &lb).ok());
  EXPECT_EQ(la, lb);
}

#ifdef QFORGE_HAVE_REFEREE

struct Agreement {
  double max_abs_logit_diff = 0;
  bool tokens_equal = false;
};

Agreement CompareWithLlamaCpp(const std::string& path, int n_gen) {
  Agreement a;
  testing::LlamaCppModel ref(path);
  EXPECT_TRUE(ref.ok()) << "llama.cpp could not load " << path;
  if (!ref.ok()) return a;
  auto m = LlamaModel::Load(path);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return a;
  LlamaContext ctx(*m, 512, 1);
  const std::vector<int32_t> prompt = ref.Tokenize("Once upon a time", true);
  std::vector<int32_t> ours = OurGreedy(ctx, prompt, n_gen);
  std::vector<int32_t> theirs = ref.Greedy(prompt, n_gen);
  a.tokens_equal = ours == theirs;
  std::vector<int32_t> seq = prompt;
  seq.insert(seq.end(), theirs.begin(), theirs.end());
  std::vector<float> ref_logits = ref.AllLogits(seq), our_logits;
  ctx.Reset();
  EXPECT_TRUE(ctx.Eval(seq, true, &our_logits).ok());
  EXPECT_EQ(ref_logits.size(), our_logits.size());
  for (size_t i = 0; i < std::min(ref_logits.size(), our_logits.size()); ++i) {
    a.max_abs_logit_diff = std::max(a.max_abs_logit_diff, std::fabs(static_cast<double>(ref_logits[i]) - our_logits[i]));
  }
  return a;
}

TEST(LlamaContextVsLlamaCpp, Stories260KF32) {
  Agreement a = CompareWithLlamaCpp(kStories, 60);
  EXPECT_TRUE(a.tokens_equal);
  EXPECT_LT(a.max_abs_logit_diff, 1e-2);
  std::printf("stories260K F32: max |logit diff| vs llama.cpp = %.3g\n", a.max_abs_logit_diff);
}

TEST(LlamaContextVsLlamaCpp, Stories260KQuantizedTypes) {
  auto src = OpenGgufSource(kStories);
  ASSERT_TRUE(src.ok());
  fs::path dir = fs::temp_directory_path() / ("qforge_rt_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const std::string type : {"F16", "Q8_0", "Q5_1", "Q4_0", "Q4_1", "IQ4_NL", "Q4_K_M", "Q2_K"}) {
    auto policy = MakePolicy(type, ModelFactsFromSource(*src));
    ASSERT_TRUE(policy.ok());
    const std::string out = (dir / (type + ".gguf")).string();
    auto r = QuantizeToGguf(*src, *policy, out, {});
    ASSERT_TRUE(r.ok()) << type << ": " << r.status().ToString();
    Agreement a = CompareWithLlamaCpp(out, 40);
    std::printf("stories260K %-7s: greedy tokens %s, max |logit diff| vs llama.cpp = %.3g\n", type.c_str(),
                a.tokens_equal ? "equal" : "DIFFER", a.max_abs_logit_diff);
    EXPECT_TRUE(a.tokens_equal) << type;
    EXPECT_LT(a.max_abs_logit_diff, type == "F16" ? 2e-3 : 0.15) << type;
  }
  fs::remove_all(dir);
}

#endif  // QFORGE_HAVE_REFEREE

}  // namespace
}  // namespace qforge

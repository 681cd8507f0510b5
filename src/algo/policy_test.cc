// The per-tensor type policy: hand-checked rules on a 16-layer model, overrides winning, fallbacks, and a
// differential test against llama.cpp's own llama_model_quantize on the same file for every named mix.
#include "qforge/algo/policy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "qforge/formats/gguf.h"
#include "qforge/pipeline/quantize.h"
#include "synthetic_model.h"

#ifdef QFORGE_HAVE_REFEREE
#include "llama.h"
#endif

namespace qforge {
namespace {

namespace fs = std::filesystem;

std::map<std::string, GgmlType> PlanMap(const std::string& mix, const SourceModel& m) {
  auto policy = MakePolicy(mix, ModelFactsFromSource(m));
  EXPECT_TRUE(policy.ok()) << policy.status().ToString();
  std::map<std::string, GgmlType> out;
  for (const auto& c : PlanTensorTypes(*policy, m)) out[c.name] = c.type;
  return out;
}

TEST(Policy, Q4KMUsesMoreBitsLayersFor16Layers) {
  testing::SyntheticSpec spec;  // 16 layers, rows of 256 and 512
  SourceModel m = testing::MakeSyntheticLlama(spec);
  auto plan = PlanMap("Q4_K_M", m);
  // use_more_bits(i, 16): i < 2 || i >= 14 || (i - 2) % 3 == 2  ->  {0, 1, 4, 7, 10, 13, 14, 15}
  const std::set<int> more = {0, 1, 4, 7, 10, 13, 14, 15};
  for (int l = 0; l < 16; ++l) {
    const GgmlType want = more.count(l) ? GgmlType::Q6_K : GgmlType::Q4_K;
    EXPECT_EQ(plan[fmt::format("blk.{}.attn_v.weight", l)], want) << l;
    EXPECT_EQ(plan[fmt::format("blk.{}.ffn_down.weight", l)], want) << l;
    EXPECT_EQ(plan[fmt::format("blk.{}.attn_q.weight", l)], GgmlType::Q4_K) << l;
    EXPECT_EQ(plan[fmt::format("blk.{}.attn_norm.weight", l)], GgmlType::F32) << l;
  }
  EXPECT_EQ(plan["output.weight"], GgmlType::Q6_K);
  EXPECT_EQ(plan["token_embd.weight"], GgmlType::Q4_K);
}

TEST(Policy, TiedEmbeddingFollowsOutputRule) {
  testing::SyntheticSpec spec;
  spec.tied_output = true;
  auto plan = PlanMap("Q4_0", testing::MakeSyntheticLlama(spec));
  EXPECT_EQ(plan["token_embd.weight"], GgmlType::Q6_K);
}

TEST(Policy, UserOverrideAlwaysWins) {
  SourceModel m = testing::MakeSyntheticLlama({});
  auto policy = MakePolicy("Q4_K_M", ModelFactsFromSource(m));
  ASSERT_TRUE(policy.ok());
  ASSERT_TRUE(AddUserOverride(&*policy, R"(attn_v\.weight=Q8_0)").ok());
  ASSERT_TRUE(AddUserOverride(&*policy, "output=Q4_0").ok());
  for (const auto& c : PlanTensorTypes(*policy, m)) {
    if (c.name.find("attn_v.weight") != std::string::npos) { EXPECT_EQ(c.type, GgmlType::Q8_0) << c.name; }
    if (c.name == "output.weight") { EXPECT_EQ(c.type, GgmlType::Q4_0); }
  }
  EXPECT_FALSE(AddUserOverride(&*policy, "noequals").ok());
  EXPECT_FALSE(AddUserOverride(&*policy, "x=Q9_9").ok());
  EXPECT_FALSE(AddUserOverride(&*policy, "([=Q4_0").ok());
  EXPECT_FALSE(MakePolicy("Q7_K", ModelFactsFromSource(m)).ok());
}

TEST(Policy, FallbacksFollowLlamaCpp) {
  EXPECT_EQ(FallbackType(GgmlType::Q4_K, 64), GgmlType::Q5_0);
  EXPECT_EQ(FallbackType(GgmlType::Q5_K, 64), GgmlType::Q5_1);
  EXPECT_EQ(FallbackType(GgmlType::Q6_K, 64), GgmlType::Q8_0);
  EXPECT_EQ(FallbackType(GgmlType::Q2_K, 64), GgmlType::Q4_0);
  EXPECT_EQ(FallbackType(GgmlType::Q3_K, 64), GgmlType::Q4_0);
  EXPECT_EQ(FallbackType(GgmlType::IQ4_XS, 64), GgmlType::IQ4_NL);
  EXPECT_EQ(FallbackType(GgmlType::Q4_K, 172), GgmlType::F16);
  EXPECT_EQ(FallbackType(GgmlType::Q4_0, 172), GgmlType::F16);
  EXPECT_EQ(FallbackType(GgmlType::Q4_K, 512), GgmlType::Q4_K);
}

#ifdef QFORGE_HAVE_REFEREE

void Quiet(enum ggml_log_level, const char*, void*) {}

// Quantizes `in` with llama.cpp at `ftype` and returns the type it chose for every tensor.
std::map<std::string, GgmlType> LlamaCppTypes(const std::string& in, const std::string& out, llama_ftype ftype) {
  llama_model_quantize_params p = llama_model_quantize_default_params();
  p.nthread = 1;
  p.ftype = ftype;
  EXPECT_EQ(llama_model_quantize(in.c_str(), out.c_str(), &p), 0u) << "llama.cpp failed on ftype " << ftype;
  auto g = ReadGguf(out);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  std::map<std::string, GgmlType> types;
  if (g.ok())
    for (const auto& t : g->tensors) types[t.name] = t.type;
  return types;
}

void ExpectSameAsLlamaCpp(const SourceModel& model, const std::string& in_gguf, const fs::path& dir) {
  llama_log_set(Quiet, nullptr);
  for (const std::string mix : {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
                                "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"}) {
    auto policy = MakePolicy(mix, ModelFactsFromSource(model));
    ASSERT_TRUE(policy.ok());
    auto ref = LlamaCppTypes(in_gguf, (dir / (mix + ".gguf")).string(), static_cast<llama_ftype>(policy->llama_ftype));
    ASSERT_EQ(ref.size(), model.tensors.size()) << mix;
    for (const auto& c : PlanTensorTypes(*policy, model)) {
      EXPECT_EQ(GgmlTypeName(c.type), GgmlTypeName(ref[c.name])) << mix << " " << c.name << " (" << c.reason << ")";
    }
  }
}

TEST(PolicyVsLlamaCpp, SyntheticSixteenLayerModel) {
  fs::path dir = fs::temp_directory_path() / ("qforge_policy_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  testing::SyntheticSpec spec;
  spec.n_ff = 256;
  spec.n_vocab = 320;
  SourceModel m = testing::MakeSyntheticLlama(spec);
  auto f16 = MakePolicy("F16", ModelFactsFromSource(m));
  ASSERT_TRUE(f16.ok());
  const std::string in = (dir / "synthetic-f16.gguf").string();
  auto written = QuantizeToGguf(m, *f16, in, {});
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  ExpectSameAsLlamaCpp(m, in, dir);
  fs::remove_all(dir);
}

TEST(PolicyVsLlamaCpp, Stories260KFallbacks) {
  const std::string in = std::string(QFORGE_SHARED_DIR) + "/models/stories260K/stories260K.gguf";
  auto m = OpenGgufSource(in);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  fs::path dir = fs::temp_directory_path() / ("qforge_policy260k_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ExpectSameAsLlamaCpp(*m, in, dir);
  fs::remove_all(dir);
}

#endif  // QFORGE_HAVE_REFEREE

}  // namespace
}  // namespace qforge

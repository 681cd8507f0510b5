// Sensitivity: the damage-scale fit on hand-made probes, the measurement file (round trip, stale and
// corrupt files rejected), budget plans on a synthetic model (budget kept, overrides win, the policy
// reproduces the plan, the header prediction is the written header) and a small real measurement.
#include "qforge/algo/sensitivity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "qforge/formats/gguf.h"
#include "qforge/formats/model_source.h"
#include "qforge/pipeline/quantize.h"
#include "synthetic_model.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

std::string TempPath(const std::string& name) {
  return (fs::temp_directory_path() / ("qforge-sens-" + std::to_string(::getpid()) + "-" + name)).string();
}

// A measurement for a model with made-up errors: error = numel · 4^-bits (rate-distortion-like), with a
// per-tensor factor so tensors differ.
Measurement FakeMeasurement(const SourceModel& model) {
  Measurement m;
  m.model_path = model.path;
  const auto mask = QuantizableTensors(model);
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    if (!mask[i]) continue;
    const auto& t = model.tensors[i];
    TensorSensitivity ts;
    ts.name = t.name;
    ts.ne = t.ne;
    for (GgmlType type : DefaultCandidateTypes()) {
      if (t.ne[0] % GgmlLayout(type).block_size != 0) continue;
      CandidateSensitivity c;
      c.type = type;
      c.bytes = *GgufTensorBytes(type, t.ne);
      c.error = type == GgmlType::F32 ? 0.0
                                      : (1.0 + i % 5) * t.numel() * std::pow(4.0, -GgmlLayout(type).bits_per_weight());
      ts.candidates.push_back(c);
    }
    m.tensors.push_back(ts);
  }
  m.probes.push_back({m.tensors[0].name, GgmlType::Q4_K, m.tensors[0].candidates[3].error, 1e-3});
  FitDamageScales(&m);
  return m;
}

TEST(Sensitivity, ScaleFitUsesTensorThenKindThenGlobal) {
  Measurement m;
  for (const char* name : {"blk.0.attn_q.weight", "blk.1.attn_q.weight", "blk.0.ffn_down.weight", "output.weight"}) {
    TensorSensitivity t;
    t.name = name;
    t.candidates.push_back({GgmlType::Q4_0, 100, 2.0, 0});
    m.tensors.push_back(t);
  }
  // blk.0.attn_q: ratios 1e-3 and 4e-3 -> geometric mean 2e-3. blk.0.ffn_down: 1e-2.
  m.probes = {{"blk.0.attn_q.weight", GgmlType::Q4_0, 1.0, 1e-3},
              {"blk.0.attn_q.weight", GgmlType::Q2_K, 2.0, 8e-3},
              {"blk.0.ffn_down.weight", GgmlType::Q4_0, 1.0, 1e-2},
              {"blk.0.ffn_down.weight", GgmlType::Q8_0, 0.0, 0.0}};  // error 0: ignored
  FitDamageScales(&m);
  EXPECT_NEAR(m.tensors[0].scale, 2e-3, 1e-12);
  EXPECT_EQ(m.tensors[0].scale_source, "probed");
  EXPECT_NEAR(m.tensors[1].scale, 2e-3, 1e-12);  // same kind as the probed attn_q
  EXPECT_EQ(m.tensors[1].scale_source, "kind");
  EXPECT_NEAR(m.tensors[2].scale, 1e-2, 1e-12);
  EXPECT_NEAR(m.tensors[3].scale, std::cbrt(1e-3 * 4e-3 * 1e-2), 1e-12);  // global geometric mean
  EXPECT_EQ(m.tensors[3].scale_source, "global");
  EXPECT_NEAR(m.tensors[0].candidates[0].damage, 4e-3, 1e-12);
  // Leave-one-out per tensor: each attn_q probe predicted from the other is off by ln 4.
  EXPECT_NEAR(m.fit_median_abs_log_ratio_tensor, std::log(4.0), 1e-9);
}

TEST(Sensitivity, MeasurementFileRoundTripsAndRejectsStaleOrCorruptFiles) {
  testing::SyntheticSpec spec;
  spec.n_layer = 2;
  SourceModel model = testing::MakeSyntheticLlama(spec);
  Measurement m = FakeMeasurement(model);
  m.model_file_bytes = 12345;
  const std::string path = TempPath("m.json");
  ASSERT_TRUE(SaveMeasurement(m, path).ok());
  auto back = LoadMeasurement(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->tensors.size(), m.tensors.size());
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    ASSERT_EQ(back->tensors[i].candidates.size(), m.tensors[i].candidates.size());
    for (size_t k = 0; k < m.tensors[i].candidates.size(); ++k) {
      EXPECT_EQ(back->tensors[i].candidates[k].type, m.tensors[i].candidates[k].type);
      EXPECT_EQ(back->tensors[i].candidates[k].error, m.tensors[i].candidates[k].error);  // exact round trip
      EXPECT_EQ(back->tensors[i].candidates[k].damage, m.tensors[i].candidates[k].damage);
    }
  }
  EXPECT_TRUE(CheckMeasurementMatches(*back, model, 12345, path).ok());
  EXPECT_FALSE(CheckMeasurementMatches(*back, model, 12346, path).ok());  // another file size
  SourceModel other = testing::MakeSyntheticLlama({.n_embd = 512, .n_layer = 2});
  EXPECT_FALSE(CheckMeasurementMatches(*back, other, 12345, path).ok());  // other shapes

  auto rewrite = [&](const std::string& from, const std::string& to) {
    std::ifstream in(path);
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = s.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    std::ofstream(path + ".bad") << s;
  };
  rewrite("\"version\": 1", "\"version\": 99");
  EXPECT_FALSE(LoadMeasurement(path + ".bad").ok());
  rewrite("\"type\": \"Q4_0\"", "\"type\": \"Q9_9\"");
  EXPECT_FALSE(LoadMeasurement(path + ".bad").ok());
  rewrite("\"bytes\": ", "\"bytes\": 1");  // a size that does not match the shape
  EXPECT_FALSE(LoadMeasurement(path + ".bad").ok());
  std::ofstream(path + ".bad") << "{not json";
  EXPECT_FALSE(LoadMeasurement(path + ".bad").ok());
  fs::remove(path);
  fs::remove(path + ".bad");
}

TEST(Sensitivity, BudgetPlanKeepsTheBudgetHonoursOverridesAndPredictsTheFile) {
  testing::SyntheticSpec spec;
  spec.n_layer = 2;
  spec.n_vocab = 256;
  SourceModel model = testing::MakeSyntheticLlama(spec);
  const Measurement m = FakeMeasurement(model);
  uint64_t params = 0;
  for (const auto& t : model.tensors) params += t.numel();

  double last_damage = INFINITY;
  for (double bpw : {3.0, 4.0, 5.0, 6.5}) {
    BudgetRequest req;
    req.padded = false;
    req.tensor_bytes = static_cast<uint64_t>(params * bpw / 8);
    req.overrides = {"attn_v=Q8_0"};
    auto plan = PlanBudget(m, model, req);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    EXPECT_LE(plan->bytes, req.tensor_bytes);
    EXPECT_GE(plan->bytes, req.tensor_bytes * 0.99) << bpw;  // many candidates: the budget is nearly used
    EXPECT_LT(plan->damage, last_damage);                    // more bytes, less predicted damage
    last_damage = plan->damage;
    // The policy reproduces the plan exactly, and the override won.
    auto q = PlanQuantization(model, plan->policy);
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->tensor_bytes, plan->bytes);
    for (size_t i = 0; i < model.tensors.size(); ++i) {
      EXPECT_EQ(q->plan[i].type, plan->tensors[i].type) << model.tensors[i].name;
      if (model.tensors[i].name.find("attn_v") != std::string::npos) {
        EXPECT_EQ(plan->tensors[i].type, GgmlType::Q8_0);
      }
    }
  }
  BudgetRequest tiny;
  tiny.tensor_bytes = 1000;
  EXPECT_FALSE(PlanBudget(m, model, tiny).ok());

  // A file-size budget: the written file is exactly header + padded tensor bytes, within the limit.
  BudgetRequest req;
  req.padded = true;
  req.tensor_bytes = params / 2;
  auto plan = PlanBudget(m, model, req);
  ASSERT_TRUE(plan.ok());
  QuantizeOptions opt;
  opt.extra_metadata.emplace_back("quantize.budget.target", MetaValue::String("test"));
  Metadata meta = model.metadata;
  SetGgufFileTypeKeys(&meta, plan->policy.llama_ftype, true);
  meta.Set("general.quantized_by", MetaValue::String("qforge 0.1.0"));
  for (const auto& [k, v] : opt.extra_metadata) meta.Set(k, v);
  const std::string out = TempPath("budget.gguf");
  auto report = QuantizeToGguf(model, plan->policy, out, opt);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->file_bytes, GgufHeaderBytes(meta, model) + plan->bytes);
  fs::remove(out);
}

#ifdef QFORGE_SHARED_DIR
// A real measurement on stories260K with a few probes: errors fall with bits, probes see positive KLD,
// and the same inputs give the same file.
TEST(Sensitivity, MeasuresStories260K) {
  const std::string path = std::string(QFORGE_SHARED_DIR) + "/models/stories260K/stories260K.gguf";
  auto model = OpenModelSource(path);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  MeasureOptions opt;
  opt.calib_file = std::string(QFORGE_SHARED_DIR) + "/data/tinystories/tinystories_valid_head.txt";
  opt.calib_tokens = 256;
  opt.calib_ctx = 64;
  opt.max_probe_tensors = 3;
  opt.candidates = {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::F16, GgmlType::F32};  // keeps the test fast
  auto a = MeasureSensitivity(*model, path, opt);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->chunks, 4);
  ASSERT_GE(a->probes.size(), 3u);
  for (const auto& p : a->probes) {
    EXPECT_GT(p.kld, 0) << p.tensor;
    EXPECT_GT(p.error, 0) << p.tensor;
  }
  for (const auto& t : a->tensors) {
    double q4_0 = -1, q8_0 = -1;
    for (const auto& c : t.candidates) {
      if (c.type == GgmlType::Q4_0) q4_0 = c.error;
      if (c.type == GgmlType::Q8_0) q8_0 = c.error;
      if (c.type == GgmlType::F32) {
        EXPECT_EQ(c.error, 0);
      }
    }
    if (q4_0 >= 0 && q8_0 >= 0) {
      EXPECT_GT(q4_0, q8_0) << t.name;
    }
    EXPECT_GT(t.scale, 0);
  }
  auto b = MeasureSensitivity(*model, path, opt);
  ASSERT_TRUE(b.ok());
  const std::string pa = TempPath("a.json"), pb = TempPath("b.json");
  ASSERT_TRUE(SaveMeasurement(*a, pa).ok());
  ASSERT_TRUE(SaveMeasurement(*b, pb).ok());
  std::ifstream fa(pa), fb(pb);
  std::string sa((std::istreambuf_iterator<char>(fa)), {}), sb((std::istreambuf_iterator<char>(fb)), {});
  EXPECT_EQ(sa, sb);
  fs::remove(pa);
  fs::remove(pb);
}
#endif

}  // namespace
}  // namespace qforge

// inspect --error: SNR of identical tensors is +inf (and sorts last), a known perturbation gives the
// expected RMSE/max/SNR, mismatches name the tensor, and a real quantized GGUF ranks Q4_0 below Q8_0.
#include "qforge/plan/tensor_error.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>

#include "qforge/algo/policy.h"
#include "qforge/formats/model_source.h"
#include "qforge/pipeline/quantize.h"
#include "synthetic_model.h"

namespace qforge {
namespace {

void AddF32(SourceModel* m, const std::string& name, std::vector<uint64_t> ne, std::vector<float> values) {
  auto data = std::make_shared<std::vector<float>>(std::move(values));
  SourceTensor t;
  t.name = name;
  t.ne = std::move(ne);
  t.type = GgmlType::F32;
  EXPECT_EQ(t.numel(), data->size());
  t.raw = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data->data()), data->size() * sizeof(float));
  t.read_f32 = [data](float* dst) {
    std::copy(data->begin(), data->end(), dst);
    return Status::Ok();
  };
  m->keep_alive.push_back(data);
  m->tensors.push_back(std::move(t));
}

TEST(TensorError, IdenticalIsInfiniteAndKnownPerturbation) {
  SourceModel ref, q;
  ref.path = "ref";
  q.path = "quant";
  AddF32(&ref, "same.weight", {4, 8}, std::vector<float>(32, 0.5f));
  AddF32(&q, "same.weight", {4, 8}, std::vector<float>(32, 0.5f));
  // ref = 1, q = 1 + 0.125 on every element: rmse 0.125, max 0.125, SNR = 10 log10(1 / 0.125²) = 18.06 dB.
  AddF32(&ref, "off.weight", {8, 8}, std::vector<float>(64, 1.0f));
  AddF32(&q, "off.weight", {8, 8}, std::vector<float>(64, 1.125f));
  // One element off by 2 in 100 values of 3: Σref² = 900, Σerr² = 4 -> SNR 23.52 dB, max 2, rmse 0.2.
  std::vector<float> spike(100, 3.0f);
  AddF32(&ref, "spike.weight", {100}, spike);
  spike[42] = 1.0f;
  AddF32(&q, "spike.weight", {100}, spike);

  auto r = CompareTensors(ref, q);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->tensors.size(), 3u);
  EXPECT_EQ(r->tensors[0].name, "off.weight");  // worst first
  EXPECT_EQ(r->tensors[1].name, "spike.weight");
  EXPECT_EQ(r->tensors[2].name, "same.weight");
  const ErrorSums& off = r->tensors[0].sums;
  EXPECT_DOUBLE_EQ(off.rmse(), 0.125);
  EXPECT_DOUBLE_EQ(off.max_abs, 0.125);
  EXPECT_NEAR(off.snr_db(), 20 * std::log10(8.0), 1e-12);
  const ErrorSums& sp = r->tensors[1].sums;
  EXPECT_DOUBLE_EQ(sp.max_abs, 2.0);
  EXPECT_NEAR(sp.rmse(), 0.2, 1e-12);
  EXPECT_NEAR(sp.snr_db(), 10 * std::log10(900.0 / 4.0), 1e-12);
  const ErrorSums& same = r->tensors[2].sums;
  EXPECT_TRUE(std::isinf(same.snr_db()) && same.snr_db() > 0);
  EXPECT_EQ(same.rmse(), 0.0);
  EXPECT_EQ(FormatSnr(same.snr_db()), "inf");
  EXPECT_EQ(FormatSnr(sp.snr_db()), "23.52");
  // Totals: Σref² = 8 + 64 + 900, Σerr² = 1 + 4.
  EXPECT_EQ(r->total.n, 196u);
  EXPECT_NEAR(r->total.snr_db(), 10 * std::log10(972.0 / 5.0), 1e-9);
  EXPECT_EQ(r->quantized.n, 0u);  // every tensor kept its type (F32)

  ErrorSums zero_ref;
  zero_ref.n = 1;
  zero_ref.sum_err2 = 1;
  EXPECT_EQ(FormatSnr(zero_ref.snr_db()), "-inf");
}

TEST(TensorError, MismatchesNameTheTensor) {
  SourceModel ref, q;
  ref.path = "ref.gguf";
  q.path = "q.gguf";
  AddF32(&ref, "a.weight", {4, 2}, std::vector<float>(8, 1.0f));
  AddF32(&q, "a.weight", {2, 4}, std::vector<float>(8, 1.0f));
  auto r = CompareTensors(ref, q);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find("'a.weight' has shape [4 x 2] in ref.gguf but [2 x 4] in q.gguf"),
            std::string::npos)
      << r.status().ToString();

  SourceModel q2;
  q2.path = "q2.gguf";
  AddF32(&q2, "b.weight", {4, 2}, std::vector<float>(8, 1.0f));
  r = CompareTensors(ref, q2);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find("'a.weight' is in ref.gguf but not in q2.gguf"), std::string::npos);
  AddF32(&q2, "a.weight", {4, 2}, std::vector<float>(8, 1.0f));
  r = CompareTensors(ref, q2);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find("'b.weight' is in q2.gguf but not in ref.gguf"), std::string::npos);
}

TEST(TensorError, QuantizedGgufRanksQ4BelowQ8) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("qforge_plan_err_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  testing::SyntheticSpec spec;
  spec.n_layer = 2;
  const SourceModel ref = testing::MakeSyntheticLlama(spec);
  auto policy = MakePolicy("Q8_0", ModelFactsFromSource(ref));
  ASSERT_TRUE(policy.ok());
  policy->rules.clear();
  ASSERT_TRUE(AddUserOverride(&*policy, R"(ffn_down\.weight$=Q4_0)").ok());
  const std::string path = (dir / "mixed.gguf").string();
  ASSERT_TRUE(QuantizeToGguf(ref, *policy, path, {}).ok());
  auto quant = OpenModelSource(path);
  ASSERT_TRUE(quant.ok()) << quant.status().ToString();

  auto r = CompareTensors(ref, *quant);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->tensors.size(), ref.tensors.size());
  // The Q4_0 tensors come first (~20 dB: 4-bit RTN on Gaussians), Q8_0 ~40 dB, the F32 norms last at +inf.
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(r->tensors[i].quant_type, GgmlType::Q4_0) << r->tensors[i].name;
    EXPECT_GT(r->tensors[i].sums.snr_db(), 15.0);
    EXPECT_LT(r->tensors[i].sums.snr_db(), 25.0);
  }
  EXPECT_EQ(r->tensors[2].quant_type, GgmlType::Q8_0);
  EXPECT_GT(r->tensors[2].sums.snr_db(), 35.0);
  EXPECT_TRUE(std::isinf(r->tensors.back().sums.snr_db()));
  EXPECT_EQ(r->tensors.back().quant_type, GgmlType::F32);
  EXPECT_GT(r->quantized.n, 0u);
  EXPECT_LT(r->quantized.snr_db(), r->tensors[2].sums.snr_db());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qforge

// CalibratedEncoder through QuantizeToGguf on stories260K: AWQ with unit scales writes the RTN file byte
// for byte; every method writes identical bytes twice and with 1 vs 2 threads; the block tensors it
// encodes are what the plan asked for and the file decodes.
#include "qforge/pipeline/calibrated_encoder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "qforge/algo/calibration_text.h"
#include "qforge/formats/model_source.h"
#include "qforge/runtime/llama_model.h"
#include "qforge/runtime/tokenizer.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

const std::string kStories = std::string(QFORGE_SHARED_DIR) + "/models/stories260K/stories260K.gguf";

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

struct Fixture {
  SourceModel model;
  Policy policy;
  std::vector<std::vector<int32_t>> chunks;
};

Fixture Load(const std::string& type) {
  auto m = OpenModelSource(kStories, {});
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  auto p = MakePolicy(type, ModelFactsFromSource(*m));
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  auto tok = Tokenizer::FromMetadata(m->metadata);
  EXPECT_TRUE(tok.ok());
  CalibrationOptions o;
  o.file = std::string(QFORGE_SHARED_DIR) + "/data/tinystories/tinystories_valid_head.txt";
  o.tokens = 2048;
  o.ctx = 128;
  auto c = LoadCalibrationChunks(*tok, o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return Fixture{std::move(*m), std::move(*p), std::move(*c)};
}

// Quantizes with `method` (kRtn: no encoder) and returns the file's bytes.
std::vector<uint8_t> Quantize(const Fixture& f, QuantMethod method, int threads, bool unit_awq,
                              const std::string& name) {
  // The process id keeps tests that ctest runs in parallel from writing (and removing) each other's files.
  const std::string out =
      (fs::temp_directory_path() / ("qforge_calib_" + std::to_string(::getpid()) + "_" + name + ".gguf")).string();
  QuantizeOptions options;
  options.threads = threads;
  std::unique_ptr<CalibratedEncoder> enc;
  if (method != QuantMethod::kRtn) {
    auto plan = PlanQuantization(f.model, f.policy);
    EXPECT_TRUE(plan.ok());
    CalibratedOptions co;
    co.method = method;
    co.threads = threads;
    co.awq.force_unit = unit_awq;
    auto e = CalibratedEncoder::Create(f.model, plan->plan, f.chunks, co);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    enc = std::move(*e);
    options.encoder = enc.get();
  }
  auto report = QuantizeToGguf(f.model, f.policy, out, options);
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  auto bytes = ReadAll(out);
  fs::remove(out);
  return bytes;
}

TEST(CalibratedEncoder, AwqWithUnitScalesWritesTheRtnFile) {
  for (const char* type : {"Q4_0", "Q4_K_M"}) {
    Fixture f = Load(type);
    const auto rtn = Quantize(f, QuantMethod::kRtn, 1, false, "rtn");
    const auto awq = Quantize(f, QuantMethod::kAwq, 1, true, "awq_unit");
    ASSERT_FALSE(rtn.empty());
    EXPECT_TRUE(rtn == awq) << type;
  }
}

TEST(CalibratedEncoder, EveryMethodIsDeterministicAcrossRunsAndThreads) {
  Fixture f = Load("Q4_0");
  const auto rtn = Quantize(f, QuantMethod::kRtn, 1, false, "rtn");
  for (QuantMethod m : {QuantMethod::kImatrix, QuantMethod::kGptq, QuantMethod::kAwq, QuantMethod::kAwqGptq}) {
    const std::string name(QuantMethodName(m));
    const auto a = Quantize(f, m, 1, false, "a");
    const auto b = Quantize(f, m, 1, false, "b");
    const auto c = Quantize(f, m, 2, false, "c");
    ASSERT_FALSE(a.empty());
    EXPECT_TRUE(a == b) << name << ": two runs differ";
    EXPECT_TRUE(a == c) << name << ": 1 vs 2 threads differ";
    EXPECT_FALSE(a == rtn) << name << ": wrote the RTN file (the method changed nothing)";
    // The output is a model the runtime binds (shapes, types).
    const std::string path =
        (fs::temp_directory_path() / ("qforge_calib_load_" + std::to_string(::getpid()) + ".gguf")).string();
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(a.data()), a.size());
    auto loaded = LlamaModel::Load(path);
    EXPECT_TRUE(loaded.ok()) << name << ": " << loaded.status().ToString();
    fs::remove(path);
  }
}

TEST(CalibratedEncoder, RejectsBadInputs) {
  Fixture f = Load("Q4_0");
  auto plan = PlanQuantization(f.model, f.policy);
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(CalibratedEncoder::Create(f.model, plan->plan, {}, CalibratedOptions{}).ok());
  EXPECT_FALSE(CalibratedEncoder::Create(f.model, plan->plan, {{1, 2, 99999}}, CalibratedOptions{}).ok());
  EXPECT_FALSE(ParseQuantMethod("gptq2").ok());
  EXPECT_EQ(*ParseQuantMethod("awq+gptq"), QuantMethod::kAwqGptq);
}

}  // namespace
}  // namespace qforge

// Integer schemes through safetensors: the file written by QuantizeToIntSafetensors decodes exactly like the
// in-memory quantization, keeps non-quantizable tensors as F32, and on stories260K reconstructs every weight
// within a small fraction of its RMS at the expected bits per weight.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "qforge/formats/model_source.h"
#include "qforge/formats/safetensors.h"
#include "qforge/pipeline/quantize_int.h"
#include "qforge/pipeline/tensor_codec.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

std::string TempPath(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("qforge_int_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

// A small model of F32 tensors held in `storage`.
SourceModel MakeModel(std::vector<std::vector<float>>* storage) {
  SourceModel m;
  m.path = "synthetic";
  m.format = "test";
  struct Def {
    const char* name;
    std::vector<uint64_t> ne;
  } defs[] = {
      {"token_embd.weight", {70, 9}},          // partial groups of every size
      {"blk.0.attn_norm.weight", {70}},        // norm: F32
      {"blk.0.attn_q.weight", {256, 4}},
      {"blk.0.ffn_down.weight", {173, 3}},     // odd row length: int4 padding
      {"blk.0.ffn_gate.weight", {128, 2, 2}},  // 3-D: rows = 4
  };
  std::mt19937 rng(7);
  std::normal_distribution<float> gauss(0.0f, 0.05f);
  storage->reserve(std::size(defs));
  for (const auto& d : defs) {
    SourceTensor t;
    t.name = d.name;
    t.ne = d.ne;
    t.type = GgmlType::F32;
    storage->emplace_back(t.numel());
    for (auto& v : storage->back()) v = gauss(rng);
    const std::vector<float>* data = &storage->back();
    t.raw = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data->data()), data->size() * 4);
    t.read_f32 = [data](float* dst) {
      std::copy(data->begin(), data->end(), dst);
      return Status::Ok();
    };
    m.tensors.push_back(std::move(t));
  }
  return m;
}

TEST(QuantizeInt, SafetensorsRoundTripEqualsInMemoryForEveryScheme) {
  std::vector<std::vector<float>> storage;
  SourceModel model = MakeModel(&storage);
  for (const auto& name : IntSchemeNames()) {
    auto scheme = ParseIntScheme(name);
    ASSERT_TRUE(scheme.ok());
    const std::string path = TempPath(name + ".safetensors");
    auto report = QuantizeToIntSafetensors(model, *scheme, path);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->file_bytes, fs::file_size(path));
    auto file = ReadSafetensors(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    EXPECT_EQ(file->metadata.at("format"), "qforge-int");
    EXPECT_EQ(file->metadata.at("qforge.scheme"), name);
    EXPECT_EQ(file->metadata.at("qforge.source"), "synthetic");
    for (size_t i = 0; i < model.tensors.size(); ++i) {
      const SourceTensor& t = model.tensors[i];
      const uint64_t cols = t.ne[0], rows = t.numel() / cols;
      uint64_t r = 0, c = 0;
      auto back = ReadIntSafetensorsTensor(*file, t.name, &r, &c);
      ASSERT_TRUE(back.ok()) << name << " " << t.name << ": " << back.status().ToString();
      if (t.ne.size() == 1) {
        EXPECT_FALSE(report->tensors[i].quantized);
        EXPECT_EQ(*back, storage[i]) << t.name;  // F32 kept bit-exact
        continue;
      }
      EXPECT_TRUE(report->tensors[i].quantized) << t.name;
      EXPECT_EQ(r, rows);
      EXPECT_EQ(c, cols);
      auto q = QuantizeInt(*scheme, storage[i].data(), rows, cols);
      ASSERT_TRUE(q.ok());
      std::vector<float> mem(rows * cols);
      ASSERT_TRUE(DequantizeInt(*q, mem.data()).ok());
      ASSERT_EQ(back->size(), mem.size());
      for (size_t k = 0; k < mem.size(); ++k)
        ASSERT_EQ(std::memcmp(&(*back)[k], &mem[k], 4), 0) << name << " " << t.name << " element " << k;
      // Dtypes and shapes of the stored triplet.
      const SafetensorsTensor* qw = nullptr;
      const SafetensorsTensor* zs = nullptr;
      for (const auto& st : file->tensors) {
        if (st.name == t.name + ".qweight") qw = &st;
        if (st.name == t.name + ".zeros") zs = &st;
      }
      ASSERT_NE(qw, nullptr);
      EXPECT_EQ(qw->dtype, scheme->bits == 8 && scheme->symmetric ? DType::kI8 : DType::kU8);
      EXPECT_EQ(qw->shape, (std::vector<int64_t>{static_cast<int64_t>(rows),
                                                 static_cast<int64_t>(scheme->bits == 8 ? cols : (cols + 1) / 2)}));
      EXPECT_EQ(zs != nullptr, !scheme->symmetric);
    }
    fs::remove(path);
  }
}

double Rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s / static_cast<double>(v.size()));
}

TEST(QuantizeInt, Stories260KReconstruction) {
  const std::string src = std::string(QFORGE_SHARED_DIR) + "/models/stories260K/stories260K.bin";
  if (!fs::exists(src)) GTEST_SKIP() << "missing " << src;
  auto model = OpenModelSource(src);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  struct Case {
    const char* scheme;
    double max_rel_rmse;
  } cases[] = {{"int8-sym-channel", 0.01}, {"int4-asym-g32", 0.15}};
  for (const auto& cs : cases) {
    auto scheme = ParseIntScheme(cs.scheme);
    ASSERT_TRUE(scheme.ok());
    const std::string path = TempPath(std::string("stories_") + cs.scheme + ".safetensors");
    auto report = QuantizeToIntSafetensors(*model, *scheme, path);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    auto file = ReadSafetensors(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    EXPECT_EQ(file->metadata.at("general.architecture"), "llama");
    uint64_t expected_bytes = 0, quantized = 0;
    double worst = 0;
    for (size_t i = 0; i < model->tensors.size(); ++i) {
      const SourceTensor& t = model->tensors[i];
      std::vector<float> orig(t.numel());
      ASSERT_TRUE(ReadTensorF32(t, orig.data()).ok());
      auto back = ReadIntSafetensorsTensor(*file, t.name);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      ASSERT_EQ(back->size(), orig.size());
      const IntTensorReport& tr = report->tensors[i];
      if (!tr.quantized) {
        EXPECT_EQ(*back, orig) << t.name;
        continue;
      }
      ++quantized;
      double se = 0;
      for (size_t k = 0; k < orig.size(); ++k) se += std::pow(static_cast<double>((*back)[k]) - orig[k], 2);
      const double rel = std::sqrt(se / orig.size()) / Rms(orig);
      worst = std::max(worst, rel);
      std::printf("%-16s %-24s [%4llu x %4llu] rel RMSE %.5f  %.4f bpw\n", cs.scheme, t.name.c_str(),
                  static_cast<unsigned long long>(tr.rows), static_cast<unsigned long long>(tr.cols), rel,
                  tr.bits_per_weight());
      EXPECT_LT(rel, cs.max_rel_rmse) << cs.scheme << " " << t.name;
      EXPECT_DOUBLE_EQ(tr.bits_per_weight(), scheme->BitsPerWeight(tr.rows, tr.cols));
      expected_bytes += scheme->StorageBytes(tr.rows, tr.cols);
    }
    EXPECT_GT(quantized, 0u);
    EXPECT_EQ(report->quantized_bytes, expected_bytes);
    const double bpw = report->quantized_bits_per_weight();
    std::printf("%s: %llu quantized weights, %.4f bpw (quantized tensors), %.4f bpw overall, %llu file bytes, "
                "worst rel RMSE %.5f\n",
                cs.scheme, static_cast<unsigned long long>(report->quantized_params), bpw,
                report->bits_per_weight(), static_cast<unsigned long long>(report->file_bytes), worst);
    if (std::string(cs.scheme) == "int8-sym-channel") {
      EXPECT_GT(bpw, 8.0);
      EXPECT_LT(bpw, 8.6);  // 8 + 32/cols, cols >= 64
    } else {
      EXPECT_GE(bpw, 5.25);  // 4 + 40/32, more where a row is not a multiple of 32
      EXPECT_LT(bpw, 5.6);
    }
    fs::remove(path);
  }
}

}  // namespace
}  // namespace qforge

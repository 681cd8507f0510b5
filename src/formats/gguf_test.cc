// GGUF reader/writer round trips: every metadata value type, several tensor types and alignments,
// byte-identical rewrites, and the real stories260K file written by llama.cpp's converter.
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "gguf_test_util.h"
#include "qforge/formats/gguf.h"

namespace qforge {
namespace {

using gguf_test::TempPath;

std::vector<uint8_t> Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

Metadata AllTypesMetadata() {
  Metadata m;
  m.Set("general.architecture", MetaValue::String("llama"));
  m.Set("t.u8", MetaValue::U8(200));
  m.Set("t.i8", MetaValue::I8(-100));
  m.Set("t.u16", MetaValue::U16(65000));
  m.Set("t.i16", MetaValue::I16(-32000));
  m.Set("t.u32", MetaValue::U32(4000000000u));
  m.Set("t.i32", MetaValue::I32(-2000000000));
  m.Set("t.f32", MetaValue::F32(1e-5f));
  m.Set("t.bool", MetaValue::Bool(true));
  m.Set("t.string", MetaValue::String("héllo"));
  m.Set("t.empty_string", MetaValue::String(""));
  m.Set("t.u64", MetaValue::U64(~0ull));
  m.Set("t.i64", MetaValue::I64(INT64_MIN));
  m.Set("t.f64", MetaValue::F64(-3.25e300));
  m.Set("t.strings", MetaValue::StringArray({"a", "", "ccc"}));
  m.Set("t.empty_array", MetaValue::Array(GgufValueType::F32, {}));
  m.Set("t.nested", MetaValue::Array(GgufValueType::ARRAY,
                                     {MetaValue::I32Array({1, -2}), MetaValue::Array(GgufValueType::I32, {})}));
  return m;
}

struct TestTensor {
  GgufTensorDecl decl;
  std::vector<uint8_t> data;
};

std::vector<TestTensor> SomeTensors() {
  std::mt19937 rng(1234);
  std::vector<TestTensor> ts = {
      {{"a.f32", {3, 2}, GgmlType::F32}, {}},
      {{"b.f16", {5}, GgmlType::F16}, {}},
      {{"c.q4_0", {64, 3}, GgmlType::Q4_0}, {}},
      {{"d.q4_k", {256, 2, 1}, GgmlType::Q4_K}, {}},
      {{"e.f32", {8}, GgmlType::F32}, {}},  // last tensor of 32 bytes: no trailing padding at alignment 32
  };
  for (auto& t : ts) {
    t.data.resize(*GgufTensorBytes(t.decl.type, t.decl.ne));
    for (auto& b : t.data) b = static_cast<uint8_t>(rng());
  }
  return ts;
}

Status WriteFile(const std::string& path, const Metadata& m, const std::vector<TestTensor>& ts, uint32_t align) {
  std::vector<GgufTensorDecl> decls;
  for (const auto& t : ts) decls.push_back(t.decl);
  QF_ASSIGN_OR_RETURN(GgufWriter w, GgufWriter::Begin(path, m, decls, align));
  for (const auto& t : ts) QF_RETURN_IF_ERROR(w.WriteTensor(t.data));
  return w.Finish();
}

// Writes `g` again with our writer.
Status Rewrite(const GgufFile& g, const std::string& path) {
  std::vector<GgufTensorDecl> decls;
  for (const auto& t : g.tensors) decls.push_back({t.name, t.ne, t.type});
  QF_ASSIGN_OR_RETURN(GgufWriter w, GgufWriter::Begin(path, g.metadata, decls, g.alignment));
  for (size_t i = 0; i < g.tensors.size(); ++i) QF_RETURN_IF_ERROR(w.WriteTensor(g.TensorData(i)));
  return w.Finish();
}

class GgufRoundTrip : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufRoundTrip, ReadsBackWhatWasWrittenAndRewritesIdentically) {
  const uint32_t align = GetParam();
  const std::string path = TempPath("rt" + std::to_string(align) + ".gguf");
  const std::string path2 = path + ".again";
  Metadata m = AllTypesMetadata();
  auto ts = SomeTensors();
  ASSERT_TRUE(WriteFile(path, m, ts, align).ok());

  auto g = ReadGguf(path);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->version, 3u);
  EXPECT_EQ(g->alignment, align);
  EXPECT_EQ(g->data_offset % align, 0u);
  // The writer adds general.alignment (last) only when it is not the default.
  EXPECT_EQ(g->metadata.size(), m.size() + (align != kGgufDefaultAlignment ? 1 : 0));
  for (const auto& [key, value] : m.entries()) {
    const MetaValue* v = g->metadata.Find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_EQ(*v, value) << key << ": " << v->ToString() << " vs " << value.ToString();
  }
  ASSERT_EQ(g->tensors.size(), ts.size());
  uint64_t expected_offset = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(g->tensors[i].name, ts[i].decl.name);
    EXPECT_EQ(g->tensors[i].ne, ts[i].decl.ne);
    EXPECT_EQ(g->tensors[i].type, ts[i].decl.type);
    EXPECT_EQ(g->tensors[i].offset, expected_offset);  // running sum of padded sizes, as gguf.cpp demands
    expected_offset += (ts[i].data.size() + align - 1) / align * align;
    auto data = g->TensorData(i);
    EXPECT_EQ(std::vector<uint8_t>(data.begin(), data.end()), ts[i].data) << ts[i].decl.name;
  }
  EXPECT_EQ(g->bytes.size(), g->data_offset + expected_offset);

  ASSERT_TRUE(Rewrite(*g, path2).ok());
  EXPECT_EQ(Slurp(path), Slurp(path2));
  std::filesystem::remove(path);
  std::filesystem::remove(path2);
}

INSTANTIATE_TEST_SUITE_P(GgufAlignments, GgufRoundTrip, ::testing::Values(32u, 64u, 1u));

TEST(GgufSource, FloatTensorsDecodeAndQuantizedOnesStayRaw) {
  const std::string path = TempPath("src.gguf");
  Metadata m;
  m.Set("general.architecture", MetaValue::String("llama"));
  std::vector<TestTensor> ts = {{{"f32", {2}, GgmlType::F32}, {}},
                                {{"f16", {2}, GgmlType::F16}, {0x00, 0x3c, 0x00, 0xc0}},    // 1, -2
                                {{"bf16", {2}, GgmlType::BF16}, {0x80, 0x3f, 0x40, 0x40}},  // 1, 3
                                {{"q8", {32}, GgmlType::Q8_0}, std::vector<uint8_t>(34, 7)}};
  float f32[2] = {0.5f, -4.0f};
  ts[0].data.assign(reinterpret_cast<uint8_t*>(f32), reinterpret_cast<uint8_t*>(f32) + 8);
  ASSERT_TRUE(WriteFile(path, m, ts, 1).ok());  // alignment 1: F16 data at odd addresses

  auto src = OpenGgufSource(path);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  EXPECT_EQ(src->format, "gguf");
  EXPECT_EQ(src->metadata.GetString("general.architecture"), "llama");
  ASSERT_EQ(src->tensors.size(), 4u);
  const std::vector<std::vector<float>> want = {{0.5f, -4.0f}, {1.0f, -2.0f}, {1.0f, 3.0f}};
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(src->tensors[i].read_f32) << i;
    std::vector<float> got(2);
    ASSERT_TRUE(src->tensors[i].read_f32(got.data()).ok());
    EXPECT_EQ(got, want[i]) << src->tensors[i].name;
  }
  EXPECT_FALSE(src->tensors[3].read_f32);
  EXPECT_EQ(src->tensors[3].raw.size(), 34u);
  EXPECT_EQ(src->tensors[3].raw[0], 7);
  EXPECT_EQ(src->keep_alive.size(), 1u);
  std::filesystem::remove(path);
}

TEST(GgufStories, ReadsTheRealFileAndRewritesItByteIdentically) {
  const std::string path = std::string(QFORGE_SHARED_DIR) + "/models/stories260K/stories260K.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "missing " << path;
  auto g = ReadGguf(path);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->tensors.size(), 48u);
  EXPECT_EQ(g->data_offset, 14176u);
  EXPECT_EQ(g->metadata.GetString("general.architecture"), "llama");
  const MetaValue* tokens = g->metadata.Find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->array.size(), 512u);
  EXPECT_EQ(g->tensors[0].name, "token_embd.weight");
  EXPECT_EQ(g->tensors[0].ne, (std::vector<uint64_t>{64, 512}));

  // llama.cpp's converter pads exactly like gguf.cpp does, so our rewrite is byte-identical.
  const std::string out = TempPath("stories.gguf");
  ASSERT_TRUE(Rewrite(*g, out).ok());
  EXPECT_TRUE(Slurp(out) == Slurp(path));
  std::filesystem::remove(out);
}

TEST(GgufWriter, RejectsWhatTheReaderWouldReject) {
  const std::string path = TempPath("bad.gguf");
  Metadata m;
  auto begin = [&](std::vector<GgufTensorDecl> decls, uint32_t align = 32) {
    return GgufWriter::Begin(path, m, decls, align).status();
  };
  EXPECT_NE(begin({{std::string(64, 'x'), {4}, GgmlType::F32}}).reason().find("longer than"), std::string::npos);
  EXPECT_NE(begin({{"a", {}, GgmlType::F32}}).reason().find("n_dims 0"), std::string::npos);
  EXPECT_NE(begin({{"a", {1, 1, 1, 1, 1}, GgmlType::F32}}).reason().find("n_dims 5"), std::string::npos);
  EXPECT_NE(begin({{"a", {0}, GgmlType::F32}}).reason().find("dimension 0 is 0"), std::string::npos);
  EXPECT_NE(begin({{"a", {33}, GgmlType::Q4_0}}).reason().find("not a multiple"), std::string::npos);
  EXPECT_NE(begin({{"a", {4}, GgmlType::F32}, {"a", {4}, GgmlType::F32}}).reason().find("duplicate"),
            std::string::npos);
  EXPECT_NE(begin({}, 3).reason().find("power of two"), std::string::npos);
  m.Set("general.alignment", MetaValue::U32(64));
  EXPECT_NE(begin({}, 32).reason().find("disagrees"), std::string::npos);
  m = Metadata();
  m.Set("mixed", MetaValue::Array(GgufValueType::U8, {MetaValue::U8(1), MetaValue::U16(2)}));
  EXPECT_NE(begin({}).reason().find("holds a u16"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(GgufWriter, ChecksSizesAndCount) {
  const std::string path = TempPath("count.gguf");
  auto w = GgufWriter::Begin(path, Metadata(), {{"a", {4}, GgmlType::F32}, {"b", {2}, GgmlType::F16}});
  ASSERT_TRUE(w.ok());
  std::vector<uint8_t> wrong(15), a(16), b(4);
  EXPECT_NE(w->WriteTensor(wrong).reason().find("got 15 bytes"), std::string::npos);
  ASSERT_TRUE(w->WriteTensor(a).ok());
  EXPECT_NE(w->Finish().reason().find("only 1 of 2"), std::string::npos);
  ASSERT_TRUE(w->WriteTensor(b).ok());
  EXPECT_NE(w->WriteTensor(b).reason().find("more often"), std::string::npos);
  ASSERT_TRUE(w->Finish().ok());
  auto g = ReadGguf(path);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->bytes.size(), g->data_offset + 32 + 32);  // every tensor padded, the last one included
  std::filesystem::remove(path);
}

TEST(GgufWriter, FileTypeKeys) {
  Metadata m;
  SetGgufFileTypeKeys(&m, 1, false);
  EXPECT_EQ(m.GetInt("general.file_type"), 1);
  EXPECT_EQ(m.Find("general.quantization_version"), nullptr);
  SetGgufFileTypeKeys(&m, 15, true);
  EXPECT_EQ(m.Find("general.file_type")->type, GgufValueType::U32);
  EXPECT_EQ(m.GetInt("general.file_type"), 15);
  EXPECT_EQ(m.Find("general.quantization_version")->type, GgufValueType::U32);
  EXPECT_EQ(m.GetInt("general.quantization_version"), 2);
}

}  // namespace
}  // namespace qforge

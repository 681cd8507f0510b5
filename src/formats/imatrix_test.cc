// imatrix files: GGUF and legacy .dat round trips, a .dat built byte by byte in llama.cpp's layout, and a
// table of corrupt files, each refused with its own message.
#include "qforge/formats/imatrix.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gguf_test_util.h"
#include "qforge/formats/gguf.h"

#ifdef QFORGE_HAVE_REFEREE
#include <ggml.h>
#include <gguf.h>
#include <llama.h>
#endif

namespace qforge {
namespace {

using gguf_test::TempPath;
using ::testing::HasSubstr;

// Two dense tensors and one 3-expert tensor whose second expert was never routed to (count 0).
Imatrix SampleImatrix() {
  Imatrix im;
  im.datasets = {"calib-a.txt", "calib-b.txt"};
  im.chunk_count = 3;
  im.chunk_size = 8;
  im.entries["blk.0.attn_q.weight"] = {{1.5f, 0.25f, 4.0f, 0.0f}, {24}};
  im.entries["blk.0.ffn_down.weight"] = {{9.0f, 1e-6f, 3.0f}, {20}};
  im.entries["blk.0.ffn_up_exps.weight"] = {{2.0f, 4.0f, 0.0f, 0.0f, 6.0f, 12.0f}, {4, 0, 6}};
  return im;
}

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Imatrix, GgufRoundTripKeepsEveryValue) {
  const Imatrix im = SampleImatrix();
  const std::string path = TempPath("imatrix_rt.gguf");
  ASSERT_TRUE(WriteImatrixGguf(im, path).ok());
  auto back = ReadImatrix(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_FALSE(back->legacy);
  EXPECT_EQ(back->datasets, im.datasets);
  EXPECT_EQ(back->chunk_count, 3);
  EXPECT_EQ(back->chunk_size, 8);
  ASSERT_EQ(back->entries.size(), im.entries.size());
  for (const auto& [name, e] : im.entries) {
    const ImatrixEntry& b = back->entries.at(name);
    EXPECT_EQ(b.sums, e.sums) << name;  // F32 in, F32 out: bit-identical
    EXPECT_EQ(b.counts, e.counts) << name;
  }
  // The layout llama.cpp expects: general.type, in_sum2 [n_cols, n_mat] and counts [1, n_mat] in F32.
  auto gguf = ReadGguf(path);
  ASSERT_TRUE(gguf.ok());
  EXPECT_EQ(gguf->metadata.GetString("general.type"), "imatrix");
  EXPECT_EQ(gguf->metadata.Find("imatrix.chunk_count")->type, GgufValueType::U32);
  EXPECT_EQ(gguf->metadata.Find("imatrix.chunk_size")->type, GgufValueType::U32);
  bool saw_experts = false;
  for (const auto& t : gguf->tensors) {
    EXPECT_EQ(t.type, GgmlType::F32) << t.name;
    if (t.name == "blk.0.ffn_up_exps.weight.in_sum2") {
      EXPECT_EQ(t.ne, (std::vector<uint64_t>{2, 3}));
      saw_experts = true;
    }
    if (t.name == "blk.0.ffn_up_exps.weight.counts") {
      EXPECT_EQ(t.ne, (std::vector<uint64_t>{1, 3}));
    }
  }
  EXPECT_TRUE(saw_experts);
  std::remove(path.c_str());
}

TEST(Imatrix, DatRoundTripKeepsTheMeans) {
  const Imatrix im = SampleImatrix();
  const std::string path = TempPath("imatrix_rt.dat");
  ASSERT_TRUE(WriteImatrix(im, path).ok());  // chosen by the extension
  auto back = ReadImatrix(path);             // detected by content
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->legacy);
  EXPECT_EQ(back->chunk_count, 3);
  EXPECT_EQ(back->datasets, std::vector<std::string>{"calib-b.txt"});  // the format keeps only the last
  // counts become ncall = ceil(count / chunk_size): 24/8 = 3, 20/8 -> 3, max(4,0,6)/8 -> 1.
  EXPECT_EQ(back->entries.at("blk.0.attn_q.weight").counts, std::vector<int64_t>{3});
  EXPECT_EQ(back->entries.at("blk.0.ffn_down.weight").counts, std::vector<int64_t>{3});
  EXPECT_EQ(back->entries.at("blk.0.ffn_up_exps.weight").counts, std::vector<int64_t>{1});
  const auto want = ToImportanceMap(im);
  const auto got = ToImportanceMap(*back);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, w] : want) {
    const auto& g = got.at(name);
    ASSERT_EQ(g.size(), w.size()) << name;
    for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(g[i], w[i], 1e-6f * std::max(1.0f, w[i])) << name << " " << i;
  }
  std::remove(path.c_str());
}

TEST(Imatrix, ImportanceIsMeanSquarePerColumnAndOneWithoutData) {
  const auto map = ToImportanceMap(SampleImatrix());
  EXPECT_EQ(map.at("blk.0.attn_q.weight"), (std::vector<float>{1.5f / 24, 0.25f / 24, 4.0f / 24, 0.0f}));
  // Expert 1 has count 0: weight 1 per column (llama.cpp's rule), the others sum/count.
  EXPECT_EQ(map.at("blk.0.ffn_up_exps.weight"), (std::vector<float>{0.5f, 1.0f, 1.0f, 1.0f, 1.0f, 2.0f}));
}

// llama.cpp's legacy layout, written field by field here (not by our writer): values are mean·ncall.
class DatBytes {
 public:
  DatBytes& I32(int32_t v) { return Put(&v, 4); }
  DatBytes& F32(float v) { return Put(&v, 4); }
  DatBytes& Str(const std::string& s) { return I32(static_cast<int32_t>(s.size())).Put(s.data(), s.size()); }
  DatBytes& Put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
  std::vector<uint8_t> bytes;
};

DatBytes LlamaCppDat() {
  DatBytes d;
  d.I32(2);
  d.Str("blk.0.attn_k.weight").I32(4).I32(3).F32(0.5f * 4).F32(2.0f * 4).F32(0.125f * 4);
  d.Str("blk.1.ffn_gate.weight").I32(4).I32(2).F32(3.0f * 4).F32(1.0f * 4);
  d.I32(4);               // chunks processed
  d.Str("wiki.train.raw");  // dataset
  return d;
}

TEST(Imatrix, ReadsALegacyDatInLlamaCppLayout) {
  const DatBytes d = LlamaCppDat();
  const std::string path = TempPath("imatrix_llamacpp.dat");
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(d.bytes.data()), d.bytes.size());
  auto im = ReadImatrix(path);
  ASSERT_TRUE(im.ok()) << im.status().ToString();
  EXPECT_TRUE(im->legacy);
  EXPECT_EQ(im->chunk_count, 4);
  EXPECT_EQ(im->datasets, std::vector<std::string>{"wiki.train.raw"});
  const auto map = ToImportanceMap(*im);
  ASSERT_EQ(map.size(), 2u);
  EXPECT_EQ(map.at("blk.0.attn_k.weight"), (std::vector<float>{0.5f, 2.0f, 0.125f}));
  EXPECT_EQ(map.at("blk.1.ffn_gate.weight"), (std::vector<float>{3.0f, 1.0f}));
  std::remove(path.c_str());
}

TEST(Imatrix, LegacyTrailerIsOptional) {
  DatBytes d;
  d.I32(1).Str("output.weight").I32(1).I32(2).F32(1.0f).F32(2.0f);
  auto im = ParseImatrix(d.bytes, "old.dat");
  ASSERT_TRUE(im.ok()) << im.status().ToString();
  EXPECT_EQ(im->chunk_count, 0);
  EXPECT_TRUE(im->datasets.empty());
}

struct CorruptCase {
  const char* what;
  std::vector<uint8_t> bytes;
  const char* message;
};

std::vector<uint8_t> Truncate(std::vector<uint8_t> b, size_t drop) {
  b.resize(b.size() - drop);
  return b;
}

std::vector<CorruptCase> CorruptDatCases() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  auto one = [](const std::string& name, int32_t ncall, int32_t nval, std::vector<float> v) {
    DatBytes d;
    d.I32(1).Str(name).I32(ncall).I32(nval);
    for (float x : v) d.F32(x);
    return d;
  };
  std::vector<CorruptCase> c;
  c.push_back({"empty file", {}, "file truncated while reading the entry count"});
  c.push_back({"zero entries", DatBytes().I32(0).I32(0).I32(0).I32(0).I32(0).bytes, "entry count 0 is impossible"});
  c.push_back({"more entries than bytes", DatBytes().I32(1000).I32(1).I32(1).I32(1).I32(1).bytes,
               "entry count 1000 is impossible"});
  c.push_back({"negative name length", DatBytes().I32(1).I32(-5).I32(0).I32(0).I32(0).I32(0).bytes, "name length -5"});
  c.push_back({"empty name", DatBytes().I32(1).I32(0).I32(0).I32(0).I32(0).I32(0).bytes, "name length 0"});
  c.push_back({"name past the end", DatBytes().I32(1).I32(4000).I32(0).I32(0).I32(0).I32(0).bytes,
               "entry 1 of 1: name (4000 bytes needed, 16 left)"});
  c.push_back({"NUL in name", one(std::string("a\0b", 3), 1, 1, {1.0f}).bytes, "contains a NUL byte"});
  c.push_back({"negative ncall", one("blk.0.attn_q.weight", -1, 1, {1.0f}).bytes,
               "tensor blk.0.attn_q.weight: ncall is -1"});
  c.push_back({"zero values", one("blk.0.attn_q.weight", 1, 0, {1.0f}).bytes,
               "tensor blk.0.attn_q.weight: value count is 0"});
  c.push_back({"values past the end", one("blk.0.attn_q.weight", 1, 3, {1.0f}).bytes,
               "tensor blk.0.attn_q.weight: values (12 bytes needed, 4 left)"});
  c.push_back({"NaN value", one("blk.0.attn_q.weight", 1, 2, {1.0f, nan}).bytes,
               "tensor blk.0.attn_q.weight: value 1 of its sums of squares is nan"});
  c.push_back({"Inf value", one("blk.0.attn_v.weight", 1, 1, {inf}).bytes,
               "tensor blk.0.attn_v.weight: value 0 of its sums of squares is inf"});
  c.push_back({"negative value", one("blk.0.ffn_up.weight", 1, 1, {-2.0f}).bytes,
               "tensor blk.0.ffn_up.weight: value 0 of its sums of squares is -2"});
  {
    DatBytes d;
    d.I32(2).Str("x").I32(1).I32(1).F32(1.0f).Str("x").I32(1).I32(1).F32(1.0f);
    c.push_back({"duplicate name", d.bytes, "tensor x appears twice"});
  }
  c.push_back({"trailer cut in the chunk count", Truncate(LlamaCppDat().bytes, 4 + 14 + 2),
               "file truncated while reading the trailer's chunk count"});
  c.push_back({"trailer cut in the dataset name", Truncate(LlamaCppDat().bytes, 3), "dataset name length 14 but 11"});
  {
    DatBytes d = LlamaCppDat();
    d.I32(7);
    c.push_back({"bytes after the dataset", d.bytes, "4 unexpected bytes after the dataset name"});
  }
  {
    DatBytes d = one("w", 1, 1, {1.0f});
    d.I32(-3).I32(0);
    c.push_back({"negative chunk count", d.bytes, "chunk count is -3"});
  }
  return c;
}

TEST(Imatrix, CorruptDatFilesAreRefusedWithTheirReason) {
  for (const auto& c : CorruptDatCases()) {
    auto im = ParseImatrix(c.bytes, "bad.dat");
    ASSERT_FALSE(im.ok()) << c.what;
    EXPECT_THAT(im.status().reason(), HasSubstr(c.message)) << c.what;
    EXPECT_EQ(im.status().file(), "bad.dat") << c.what;
  }
}

// A GGUF with chosen metadata and F32/F16 tensors, made by the project's writer (it accepts anything
// well-formed, so these files are broken only as imatrix files).
struct RawTensor {
  std::string name;
  std::vector<uint64_t> ne;
  std::vector<float> f32;
  GgmlType type = GgmlType::F32;
};

std::vector<uint8_t> MakeGguf(const Metadata& md, const std::vector<RawTensor>& tensors) {
  const std::string path = TempPath("imatrix_corrupt.gguf");
  std::vector<GgufTensorDecl> decls;
  for (const auto& t : tensors) decls.push_back({t.name, t.ne, t.type});
  auto w = GgufWriter::Begin(path, md, decls);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  for (const auto& t : tensors) {
    std::vector<uint8_t> bytes(t.f32.size() * (t.type == GgmlType::F32 ? 4 : 2));
    if (t.type == GgmlType::F32) std::memcpy(bytes.data(), t.f32.data(), bytes.size());
    EXPECT_TRUE(w->WriteTensor(bytes).ok());
  }
  EXPECT_TRUE(w->Finish().ok());
  auto bytes = ReadBytes(path);
  std::remove(path.c_str());
  return bytes;
}

Metadata ImatrixMetadata() {
  Metadata md;
  md.Set("general.type", MetaValue::String("imatrix"));
  md.Set("imatrix.datasets", MetaValue::StringArray({"a.txt"}));
  md.Set("imatrix.chunk_count", MetaValue::U32(1));
  md.Set("imatrix.chunk_size", MetaValue::U32(4));
  return md;
}

TEST(Imatrix, CorruptGgufFilesAreRefusedWithTheirReason) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const RawTensor sums{"w.in_sum2", {2, 1}, {1.0f, 2.0f}};
  const RawTensor counts{"w.counts", {1, 1}, {4.0f}};
  std::vector<CorruptCase> c;
  {
    Metadata md = ImatrixMetadata();
    md.Set("general.type", MetaValue::String("model"));
    c.push_back({"a model", MakeGguf(md, {sums, counts}), "not an imatrix file: general.type is"});
  }
  c.push_back({"no entries", MakeGguf(ImatrixMetadata(), {{"token_embd.weight", {2, 2}, {1, 2, 3, 4}}}),
               "no imatrix entries"});
  c.push_back({"sums without counts", MakeGguf(ImatrixMetadata(), {sums}), "tensor w: has w.in_sum2 but no w.counts"});
  c.push_back({"counts without sums", MakeGguf(ImatrixMetadata(), {sums, counts, {"v.counts", {1, 1}, {1.0f}}}),
               "tensor v: has v.counts but no v.in_sum2"});
  c.push_back({"F16 sums", MakeGguf(ImatrixMetadata(), {{"w.in_sum2", {2, 1}, {1, 2}, GgmlType::F16}, counts}),
               "tensor w: sums and counts must be F32, found F16 and F32"});
  c.push_back({"counts of the wrong shape", MakeGguf(ImatrixMetadata(), {sums, {"w.counts", {2, 1}, {4, 4}}}),
               "tensor w: counts have shape [2, 1], expected [1, 1]"});
  c.push_back({"more counts than matrices", MakeGguf(ImatrixMetadata(), {sums, {"w.counts", {1, 2}, {4, 4}}}),
               "tensor w: counts have shape [1, 2], expected [1, 1]"});
  c.push_back({"NaN sum", MakeGguf(ImatrixMetadata(), {{"w.in_sum2", {2, 1}, {nan, 2.0f}}, counts}),
               "tensor w: value 0 of its sums of squares is nan"});
  c.push_back({"negative count", MakeGguf(ImatrixMetadata(), {sums, {"w.counts", {1, 1}, {-1.0f}}}),
               "tensor w: count 0 is -1"});
  c.push_back({"infinite count",
               MakeGguf(ImatrixMetadata(), {sums, {"w.counts", {1, 1}, {std::numeric_limits<float>::infinity()}}}),
               "tensor w: count 0 is inf"});
  {
    Metadata md = ImatrixMetadata();
    md.Set("imatrix.datasets", MetaValue::String("a.txt"));
    c.push_back({"datasets not an array", MakeGguf(md, {sums, counts}), "imatrix.datasets must be an array of strings"});
  }
  {
    Metadata md = ImatrixMetadata();
    md.Set("imatrix.chunk_count", MetaValue::I32(-2));
    c.push_back({"negative chunk count", MakeGguf(md, {sums, counts}), "imatrix.chunk_count must be a non-negative"});
  }
  // A GGUF the GGUF reader itself refuses keeps that reader's message.
  c.push_back({"truncated GGUF", Truncate(MakeGguf(ImatrixMetadata(), {sums, counts}), 40), "extends past the end of the file"});
  for (const auto& k : c) {
    auto im = ParseImatrix(k.bytes, "bad.gguf");
    ASSERT_FALSE(im.ok()) << k.what;
    EXPECT_THAT(im.status().reason(), HasSubstr(k.message)) << k.what;
    EXPECT_EQ(im.status().file(), "bad.gguf") << k.what;
  }
}

TEST(Imatrix, GgufWithoutOptionalKeysStillReads) {
  auto im = ParseImatrix(MakeGguf(Metadata(), {{"w.in_sum2", {2}, {1, 2}}, {"w.counts", {1}, {2}}}), "bare.gguf");
  ASSERT_TRUE(im.ok()) << im.status().ToString();
  EXPECT_EQ(im->entries.at("w").counts, std::vector<int64_t>{2});
  EXPECT_EQ(ToImportanceMap(*im).at("w"), (std::vector<float>{0.5f, 1.0f}));
}

TEST(Imatrix, CheckAgainstModelNamesTheWrongTensorAndListsUnknownOnes) {
  SourceModel model;
  model.path = "model.gguf";
  model.tensors.push_back({"blk.0.attn_q.weight", {4, 8}, GgmlType::F32, {}, nullptr});
  model.tensors.push_back({"blk.0.ffn_up_exps.weight", {4, 8, 3}, GgmlType::F32, {}, nullptr});
  std::vector<std::string> unknown;
  std::map<std::string, std::vector<float>> ok{{"blk.0.attn_q.weight", std::vector<float>(4, 1.0f)},
                                               {"blk.0.ffn_up_exps.weight", std::vector<float>(12, 1.0f)},
                                               {"blk.9.attn_q.weight", std::vector<float>(4, 1.0f)}};
  ASSERT_TRUE(CheckImportanceAgainstModel(ok, model, &unknown).ok());
  EXPECT_EQ(unknown, std::vector<std::string>{"blk.9.attn_q.weight"});
  std::map<std::string, std::vector<float>> bad{{"blk.0.attn_q.weight", std::vector<float>(8, 1.0f)}};
  Status st = CheckImportanceAgainstModel(bad, model, &unknown);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.reason(), HasSubstr("imatrix entry blk.0.attn_q.weight has 8 values but the model's tensor has 4"));
}

TEST(Imatrix, ProvenanceUsesLlamaCppKeys) {
  const auto kv = ImatrixProvenance(SampleImatrix(), "im.gguf");
  ASSERT_EQ(kv.size(), 4u);
  EXPECT_EQ(kv[0].first, "quantize.imatrix.file");
  EXPECT_EQ(kv[0].second.s, "im.gguf");
  EXPECT_EQ(kv[1].first, "quantize.imatrix.dataset");
  EXPECT_EQ(kv[1].second.s, "calib-a.txt");
  EXPECT_EQ(kv[2].first, "quantize.imatrix.entries_count");
  EXPECT_EQ(kv[2].second.u, 3u);
  EXPECT_EQ(kv[3].first, "quantize.imatrix.chunks_count");
  EXPECT_EQ(kv[3].second.u, 3u);
}

#ifdef QFORGE_HAVE_REFEREE

// ggml's own GGUF reader (the one llama-quantize uses) sees our file as llama.cpp's imatrix layout.
TEST(ImatrixReferee, GgmlReadsOurGgufImatrix) {
  const Imatrix im = SampleImatrix();
  const std::string path = TempPath("imatrix_ggml.gguf");
  ASSERT_TRUE(WriteImatrixGguf(im, path).ok());
  ggml_context* ctx = nullptr;
  gguf_context* g = gguf_init_from_file(path.c_str(), gguf_init_params{/*no_alloc=*/false, &ctx});
  ASSERT_NE(g, nullptr);
  EXPECT_STREQ(gguf_get_val_str(g, gguf_find_key(g, "general.type")), "imatrix");
  const int64_t ds = gguf_find_key(g, "imatrix.datasets");
  ASSERT_GE(ds, 0);
  ASSERT_EQ(gguf_get_arr_n(g, ds), 2u);
  EXPECT_STREQ(gguf_get_arr_str(g, ds, 1), "calib-b.txt");
  EXPECT_EQ(gguf_get_val_u32(g, gguf_find_key(g, "imatrix.chunk_count")), 3u);
  EXPECT_EQ(gguf_get_val_u32(g, gguf_find_key(g, "imatrix.chunk_size")), 8u);
  for (const auto& [name, e] : im.entries) {
    const ggml_tensor* sums = ggml_get_tensor(ctx, (name + ".in_sum2").c_str());
    const ggml_tensor* counts = ggml_get_tensor(ctx, (name + ".counts").c_str());
    ASSERT_NE(sums, nullptr) << name;
    ASSERT_NE(counts, nullptr) << name;
    EXPECT_EQ(sums->type, GGML_TYPE_F32);
    EXPECT_EQ(sums->ne[0], static_cast<int64_t>(e.n_cols()));
    EXPECT_EQ(sums->ne[1], static_cast<int64_t>(e.n_mat()));
    EXPECT_EQ(counts->ne[0], 1);
    EXPECT_EQ(counts->ne[1], static_cast<int64_t>(e.n_mat()));
    for (size_t i = 0; i < e.sums.size(); ++i) EXPECT_EQ(static_cast<const float*>(sums->data)[i], e.sums[i]);
    for (size_t i = 0; i < e.counts.size(); ++i)
      EXPECT_EQ(static_cast<const float*>(counts->data)[i], static_cast<float>(e.counts[i]));
  }
  gguf_free(g);
  ggml_free(ctx);
  std::remove(path.c_str());
}

void QuietLog(enum ggml_log_level, const char*, void*) {}

// llama.cpp's quantizer takes our importance map for stories260K (it throws on a size mismatch and silently
// skips unknown names, so a changed output proves the entries were found and used).
TEST(ImatrixReferee, LlamaCppQuantizeUsesOurImportance) {
  const std::string model_path = std::string(QFORGE_SHARED_DIR) + "/models/stories260K/stories260K.gguf";
  auto model = ReadGguf(model_path);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Imatrix im;
  im.chunk_count = 1;
  im.chunk_size = 16;
  uint32_t seed = 12345;
  for (const auto& t : model->tensors) {
    if (t.name.rfind("blk.", 0) != 0 || t.ne.size() != 2) continue;
    ImatrixEntry e;
    for (uint64_t c = 0; c < t.ne[0]; ++c) {
      seed = seed * 1664525u + 1013904223u;
      e.sums.push_back(static_cast<float>(1 + (seed >> 8) % 1000));  // very uneven column weights
    }
    e.counts = {16};
    im.entries[t.name] = std::move(e);
  }
  const std::string im_path = TempPath("imatrix_for_llama.gguf");
  ASSERT_TRUE(WriteImatrixGguf(im, im_path).ok());
  auto back = ReadImatrix(im_path);
  ASSERT_TRUE(back.ok());
  const auto map = ToImportanceMap(*back);
  std::vector<llama_model_imatrix_data> data;
  for (const auto& [name, v] : map) data.push_back({name.c_str(), v.data(), v.size()});
  data.push_back({nullptr, nullptr, 0});

  llama_log_set(QuietLog, nullptr);
  auto quantize = [&](const std::string& out, bool with_imatrix) {
    llama_model_quantize_params p = llama_model_quantize_default_params();
    p.nthread = 1;
    p.ftype = LLAMA_FTYPE_MOSTLY_Q4_0;
    if (with_imatrix) p.imatrix = data.data();
    return llama_model_quantize(model_path.c_str(), out.c_str(), &p);
  };
  const std::string plain = TempPath("llama_plain_q4_0.gguf"), weighted = TempPath("llama_imatrix_q4_0.gguf");
  ASSERT_EQ(quantize(plain, false), 0u);
  ASSERT_EQ(quantize(weighted, true), 0u);
  auto a = ReadGguf(plain);
  auto b = ReadGguf(weighted);
  ASSERT_TRUE(a.ok() && b.ok());
  size_t changed = 0;
  for (size_t i = 0; i < a->tensors.size(); ++i) {
    const auto x = a->TensorData(i), y = b->TensorData(i);
    if (a->tensors[i].name.rfind("blk.", 0) == 0 && a->tensors[i].type == GgmlType::Q4_0 &&
        !std::equal(x.begin(), x.end(), y.begin(), y.end()))
      ++changed;
  }
  // Every Q4_0 block matrix (all but the 172-column ffn_down) was encoded differently with the importance.
  EXPECT_EQ(changed, 30u);
  for (const auto& p : {im_path, plain, weighted}) std::remove(p.c_str());
}

#endif  // QFORGE_HAVE_REFEREE

}  // namespace
}  // namespace qforge

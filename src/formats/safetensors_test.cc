// Tests of the safetensors reader and writer: byte-identical round trips, every dtype, __metadata__,
// sharded checkpoints, and a table of broken files that must each fail with their own message.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "qforge/formats/safetensors.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("qforge_st_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// A raw file: length prefix (or an explicit one), the header text, then `data_bytes` bytes.
std::vector<uint8_t> Raw(const std::string& header, size_t data_bytes, std::optional<uint64_t> len = {}) {
  uint64_t n = len.value_or(header.size());
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0x11);
  return out;
}

TEST(Safetensors, RoundTripAllDtypesByteIdentical) {
  std::string dir = TempDir("rt");
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<SafetensorsTensorOut> tensors;
  DType all[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kF64, DType::kI8,
                 DType::kU8,  DType::kI16, DType::kI32,  DType::kI64, DType::kBool};
  int k = 0;
  for (DType t : all) {
    std::vector<int64_t> shape = {2, 3};
    std::vector<uint8_t> buf(6 * DTypeSize(t));
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 7 + k);
    buffers.push_back(std::move(buf));
    tensors.push_back({"t." + std::string(DTypeName(t)), t, shape, buffers.back()});
    ++k;
  }
  tensors.push_back({"scalar", DType::kF32, {}, std::span<const uint8_t>(buffers[0]).first(4)});
  tensors.push_back({"empty", DType::kF32, {0, 5}, {}});
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "hello \"world\""}};
  std::string a = dir + "/a.safetensors", b = dir + "/b.safetensors";
  ASSERT_TRUE(WriteSafetensors(a, tensors, meta).ok());
  auto f = ReadSafetensors(a);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->metadata, meta);
  ASSERT_EQ(f->tensors.size(), tensors.size());
  std::vector<SafetensorsTensorOut> again;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = f->tensors[i];
    EXPECT_EQ(t.name, tensors[i].name);  // data-offset order == write order
    EXPECT_EQ(t.dtype, tensors[i].dtype);
    EXPECT_EQ(t.shape, tensors[i].shape);
    EXPECT_TRUE(std::equal(t.data.begin(), t.data.end(), tensors[i].data.begin(), tensors[i].data.end()));
    again.push_back({t.name, t.dtype, t.shape, t.data});
  }
  ASSERT_TRUE(WriteSafetensors(b, again, f->metadata).ok());
  auto bytes = ReadAll(a);
  EXPECT_EQ(bytes, ReadAll(b));
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | bytes[i];
  EXPECT_EQ(hlen % 8, 0u);
  std::string header(bytes.begin() + 8, bytes.begin() + 8 + hlen);
  EXPECT_EQ(header.rfind("{\"__metadata__\":{\"format\":\"pt\"", 0), 0u) << header;
  fs::remove_all(dir);
}

TEST(Safetensors, WriterRejectsSizeMismatch) {
  std::string dir = TempDir("wbad");
  std::vector<uint8_t> buf(10);
  auto s = WriteSafetensors(dir + "/x.safetensors", {{"w", DType::kF32, {3}, buf}});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.reason().find("need 12"), std::string::npos) << s.ToString();
  EXPECT_FALSE(fs::exists(dir + "/x.safetensors"));
  fs::remove_all(dir);
}

struct BrokenCase {
  const char* label;
  std::vector<uint8_t> bytes;
  const char* message;  // substring of the reason
};

TEST(Safetensors, BrokenFilesEachFailWithTheirOwnMessage) {
  const std::string ok_t = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  std::vector<BrokenCase> cases = {
      {"too small", {1, 2, 3}, "too small"},
      {"header > 100 MB", Raw("{}", 0, 100'000'001ull), "exceeds the 100 MB limit"},
      {"header 2^63", Raw("{}", 0, 1ull << 63), "exceeds the 100 MB limit"},
      {"header > file", Raw("{}", 0, 64), "exceeds the file size"},
      {"not an object", Raw("[1,2]", 0), "not an object"},
      {"invalid json", Raw("{\"a\":", 0), "invalid JSON"},
      {"unknown dtype", Raw(R"({"a":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}})", 2), "unknown dtype 'F8'"},
      {"shape negative", Raw(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "is negative"},
      {"shape overflow", Raw(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
       "overflows"},
      {"offsets reversed", Raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "reversed"},
      {"end past data", Raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), "past the data area"},
      {"size mismatch", Raw(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "needs 12"},
      {"overlap", Raw("{" + ok_t + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12), "overlap"},
      {"gap", Raw("{" + ok_t + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})", 16), "gap of 4 bytes"},
      {"trailing bytes", Raw("{" + ok_t + "}", 12), "belong to no tensor"},
      {"metadata not string map", Raw(R"({"__metadata__":{"k":1}})", 0), "__metadata__ must map strings to strings"},
      {"metadata not object", Raw(R"({"__metadata__":[]})", 0), "__metadata__ is not an object"},
      {"entry not object", Raw(R"({"a":3})", 0), "entry is not an object"},
      {"bad offsets", Raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8), "must be [begin, end]"},
  };
  std::set<std::string> reasons;
  for (const auto& c : cases) {
    auto r = ParseSafetensors(c.bytes, "bad.safetensors");
    ASSERT_FALSE(r.ok()) << c.label;
    EXPECT_NE(r.status().reason().find(c.message), std::string::npos) << c.label << ": " << r.status().ToString();
    EXPECT_EQ(r.status().file(), "bad.safetensors") << c.label;
    EXPECT_TRUE(reasons.insert(r.status().reason()).second) << c.label << " shares its message";
  }
  // And a well-formed file with the same pieces parses.
  auto good = ParseSafetensors(Raw("{" + ok_t + "}", 8), "good.safetensors");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->tensors[0].data.size(), 8u);
}

class SafetensorsSharded : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("shard");
    data_.assign(16, 0x42);
    ASSERT_TRUE(WriteSafetensors(dir_ + "/s1.safetensors", {{"a", DType::kF32, {2}, Span(8)},
                                                             {"b", DType::kF16, {2}, Span(4)}}).ok());
    ASSERT_TRUE(WriteSafetensors(dir_ + "/s2.safetensors", {{"c", DType::kBF16, {3}, Span(6)}}).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::span<const uint8_t> Span(size_t n) { return std::span<const uint8_t>(data_).first(n); }
  void Index(const std::string& weight_map) {
    std::ofstream(dir_ + "/model.safetensors.index.json")
        << R"({"metadata":{"total_size":18},"weight_map":)" << weight_map << "}";
  }
  std::string dir_;
  std::vector<uint8_t> data_;
};

TEST_F(SafetensorsSharded, ReadsAllShards) {
  Index(R"({"a":"s1.safetensors","b":"s1.safetensors","c":"s2.safetensors"})");
  auto c = ReadSafetensorsCheckpoint(dir_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->tensors.size(), 3u);
  EXPECT_EQ(c->tensors[2]->name, "c");
  ASSERT_NE(c->Find("b"), nullptr);
  EXPECT_EQ(c->Find("b")->dtype, DType::kF16);
  EXPECT_EQ(c->Find("c")->file, dir_ + "/s2.safetensors");
  EXPECT_EQ(c->Find("zz"), nullptr);
}

TEST_F(SafetensorsSharded, IndexErrors) {
  struct Case { const char* map; const char* message; };
  Case cases[] = {
      {R"({"a":"s1.safetensors","b":"s1.safetensors","c":"s3.safetensors"})", "shard 's3.safetensors' (for tensor 'c') which does not exist"},
      {R"({"a":"s1.safetensors","c":"s2.safetensors"})", "tensor 'b' is in shard 's1.safetensors' but not in the index"},
      {R"({"a":"s1.safetensors","b":"s2.safetensors","c":"s2.safetensors"})", "but the index"},
      {R"({"a":"s1.safetensors","b":"s1.safetensors","c":"s2.safetensors","d":"s2.safetensors"})",
       "maps tensor 'd' to shard 's2.safetensors' which does not contain it"},
      {R"({"a":"../s1.safetensors"})", "outside the model folder"},
      {R"({"a":3})", "is not a string"},
  };
  for (const auto& c : cases) {
    Index(c.map);
    auto r = ReadSafetensorsCheckpoint(dir_);
    ASSERT_FALSE(r.ok()) << c.map;
    EXPECT_NE(r.status().reason().find(c.message), std::string::npos) << r.status().ToString();
  }
}

TEST_F(SafetensorsSharded, SingleFileAndMissing) {
  auto one = ReadSafetensorsCheckpoint(dir_ + "/s2.safetensors");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->tensors.size(), 1u);
  auto none = ReadSafetensorsCheckpoint(dir_);
  EXPECT_FALSE(none.ok());
  EXPECT_NE(none.status().reason().find("no model.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace qforge

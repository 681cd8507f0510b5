// Tests of the llama2.c checkpoint and tokenizer readers against the real stories260K / BabyLlama files
// and llama.cpp's own conversion of stories260K (parsed here by a small independent GGUF walker, so the
// comparison does not trust qforge's GGUF reader), plus a table of corrupt inputs with their messages.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "qforge/formats/gguf.h"
#include "qforge/formats/llama2c.h"
#include "qforge/formats/model_source.h"

namespace qforge {
namespace {

const std::string kShared = QFORGE_SHARED_DIR;
const std::string kStoriesBin = kShared + "/models/stories260K/stories260K.bin";
const std::string kStoriesGguf = kShared + "/models/stories260K/stories260K.gguf";
const std::string kTok512 = kShared + "/models/stories260K/tok512.bin";
const std::string kBabyBin = kShared + "/models/babyllama-tok105/babyllama105.bin";
const std::string kTok105 = kShared + "/models/babyllama-tok105/tok105.bin";

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void WriteAll(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Minimal GGUF v3 walker for the reference file only (trusted input, no validation): metadata values as
// MetaValue and tensor infos with their data.
struct RefGguf {
  Metadata md;
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    const uint8_t* data;
  };
  std::vector<Tensor> tensors;
  std::vector<uint8_t> bytes;
};
class Walker {
 public:
  explicit Walker(const std::vector<uint8_t>& b) : b_(b) {}
  template <typename T>
  T Get() {
    T v;
    std::memcpy(&v, b_.data() + p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  std::string Str() {
    uint64_t n = Get<uint64_t>();
    std::string s(reinterpret_cast<const char*>(b_.data() + p_), n);
    p_ += n;
    return s;
  }
  MetaValue Value(uint32_t t) {
    switch (t) {
      case 4: return MetaValue::U32(Get<uint32_t>());
      case 5: return MetaValue::I32(Get<int32_t>());
      case 6: return MetaValue::F32(Get<float>());
      case 8: return MetaValue::String(Str());
      case 9: {
        uint32_t et = Get<uint32_t>();
        uint64_t n = Get<uint64_t>();
        std::vector<MetaValue> v;
        for (uint64_t i = 0; i < n; ++i) v.push_back(Value(et));
        return MetaValue::Array(static_cast<GgufValueType>(et), std::move(v));
      }
    }
    ADD_FAILURE() << "reference GGUF uses value type " << t << " this walker does not know";
    return {};
  }
  uint64_t p_ = 0;
  const std::vector<uint8_t>& b_;
};
RefGguf LoadReference() {
  RefGguf g;
  g.bytes = ReadAll(kStoriesGguf);
  Walker w(g.bytes);
  w.p_ = 8;  // magic, version
  uint64_t n_tensors = w.Get<uint64_t>(), n_kv = w.Get<uint64_t>();
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = w.Str();
    g.md.Set(key, w.Value(w.Get<uint32_t>()));
  }
  std::vector<uint64_t> offsets;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    RefGguf::Tensor t;
    t.name = w.Str();
    uint32_t nd = w.Get<uint32_t>();
    for (uint32_t d = 0; d < nd; ++d) t.ne.push_back(w.Get<uint64_t>());
    EXPECT_EQ(w.Get<uint32_t>(), 0u) << t.name;  // F32
    offsets.push_back(w.Get<uint64_t>());
    g.tensors.push_back(t);
  }
  const uint64_t data = (w.p_ + 31) / 32 * 32;
  for (size_t i = 0; i < g.tensors.size(); ++i) g.tensors[i].data = g.bytes.data() + data + offsets[i];
  return g;
}

TEST(Llama2c, Stories260KHeader) {
  auto bytes = ReadAll(kStoriesBin);
  auto c = ParseLlama2cHeader(bytes, kStoriesBin);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->dim, 64);
  EXPECT_EQ(c->hidden_dim, 172);
  EXPECT_EQ(c->n_layers, 5);
  EXPECT_EQ(c->n_heads, 8);
  EXPECT_EQ(c->n_kv_heads, 4);
  EXPECT_EQ(c->vocab_size, 512);
  EXPECT_EQ(c->seq_len, 512);
  EXPECT_TRUE(c->shared_classifier);
  auto expected = Llama2cExpectedBytes(*c);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(*expected, 1056540u);
  EXPECT_EQ(*expected, bytes.size());
}

TEST(Llama2c, Stories260KTensorsMatchLlamaCppConversion) {
  auto m = OpenLlama2cSource(kStoriesBin);  // tokenizer found as tok512.bin beside it
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->format, "llama2c");
  RefGguf ref = LoadReference();
  ASSERT_EQ(m->tensors.size(), 48u);
  ASSERT_EQ(ref.tensors.size(), 48u);
  for (size_t i = 0; i < 48; ++i) {
    const SourceTensor& t = m->tensors[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, ref.tensors[i].name);
    EXPECT_EQ(t.ne, ref.tensors[i].ne);
    EXPECT_EQ(t.type, GgmlType::F32);
    ASSERT_EQ(t.raw.size(), t.numel() * 4);
    EXPECT_EQ(std::memcmp(t.raw.data(), ref.tensors[i].data, t.raw.size()), 0);  // bit-identical
    std::vector<float> f(t.numel());
    ASSERT_TRUE(t.read_f32(f.data()).ok());
    EXPECT_EQ(std::memcmp(f.data(), t.raw.data(), t.raw.size()), 0);
  }
  // The first weight is the first float after the 28-byte header.
  auto bytes = ReadAll(kStoriesBin);
  float first_file, first_read;
  std::memcpy(&first_file, bytes.data() + 28, 4);
  std::memcpy(&first_read, m->tensors[0].raw.data(), 4);
  EXPECT_EQ(first_file, first_read);
  // Shared classifier: output.weight is the embedding table again.
  EXPECT_EQ(m->FindTensor("output.weight")->raw.data(), m->FindTensor("token_embd.weight")->raw.data());
}

TEST(Llama2c, Stories260KMetadataMatchesReference) {
  auto m = OpenLlama2cSource(kStoriesBin, kTok512);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  RefGguf ref = LoadReference();
  // Vocabulary: exactly what llama.cpp's converter stored.
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"}) {
    const MetaValue* ours = m->metadata.Find(key);
    const MetaValue* theirs = ref.md.Find(key);
    ASSERT_NE(ours, nullptr) << key;
    ASSERT_NE(theirs, nullptr) << key;
    EXPECT_EQ(ours->elem_type, theirs->elem_type) << key;
    EXPECT_TRUE(*ours == *theirs) << key;
  }
  // Every reference key is present with the same value and type, except the documented differences.
  const std::map<std::string, MetaValue> differs = {{"general.name", MetaValue::String("stories260K")},
                                                    {"llama.context_length", MetaValue::U32(512)}};
  size_t i = 0;
  for (const auto& [key, value] : ref.md.entries()) {
    SCOPED_TRACE(key);
    const MetaValue* ours = m->metadata.Find(key);
    ASSERT_NE(ours, nullptr);
    EXPECT_EQ(ours->type, value.type);
    EXPECT_EQ(m->metadata.entries()[i++].first, key);  // same order
    if (auto it = differs.find(key); it != differs.end())
      EXPECT_TRUE(*ours == it->second) << ours->ToString();
    else
      EXPECT_TRUE(*ours == value) << ours->ToString() << " vs " << value.ToString();
  }
  // The only key the reference lacks.
  EXPECT_EQ(m->metadata.size(), ref.md.size() + 1);
  EXPECT_EQ(m->metadata.GetInt("general.file_type"), 0);
}

// The same comparison through qforge's own GGUF reader (the walker above is the independent one).
TEST(Llama2c, VocabularyEqualsReadGgufOfReference) {
  auto ref = ReadGguf(kStoriesGguf);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  Metadata md;
  ASSERT_TRUE(ReadLlama2cTokenizer(kTok512, 512, &md).ok());
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                          "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                          "tokenizer.ggml.unknown_token_id"}) {
    const MetaValue* theirs = ref->metadata.Find(key);
    ASSERT_NE(theirs, nullptr) << key;
    EXPECT_TRUE(*md.Find(key) == *theirs) << key;
  }
}

TEST(Llama2c, Stories260KTokenizer) {
  Metadata md;
  ASSERT_TRUE(ReadLlama2cTokenizer(kTok512, 512, &md).ok());
  const auto& tokens = md.Find("tokenizer.ggml.tokens")->array;
  const auto& types = md.Find("tokenizer.ggml.token_type")->array;
  ASSERT_EQ(tokens.size(), 512u);
  ASSERT_EQ(types.size(), 512u);
  EXPECT_EQ(tokens[0].s, "<unk>");
  EXPECT_EQ(types[0].i, 2);
  EXPECT_EQ(tokens[1].s, "<s>");
  EXPECT_EQ(types[1].i, 3);
  EXPECT_EQ(tokens[2].s, "</s>");
  EXPECT_EQ(types[2].i, 3);
  EXPECT_EQ(tokens[3].s, "<0x00>");
  EXPECT_EQ(types[3].i, 6);
  EXPECT_EQ(tokens[258].s, "<0xFF>");
  EXPECT_EQ(types[258].i, 6);
  EXPECT_EQ(tokens[259].s, "\xE2\x96\x81t");  // "▁t"
  EXPECT_EQ(types[259].i, 1);
  EXPECT_EQ(md.GetString("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(md.GetInt("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(md.GetInt("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(md.GetInt("tokenizer.ggml.unknown_token_id"), 0);
}

TEST(Llama2c, BabyLlamaLoads) {
  auto m = OpenLlama2cSource(kBabyBin);  // finds tok105.bin beside it
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->tensors.size(), 3u + 5 * 9);
  EXPECT_EQ(m->FindTensor("token_embd.weight")->ne, (std::vector<uint64_t>{128, 105}));
  EXPECT_EQ(m->FindTensor("blk.4.attn_k.weight")->ne, (std::vector<uint64_t>{128, 64}));
  EXPECT_EQ(m->FindTensor("blk.4.ffn_down.weight")->ne, (std::vector<uint64_t>{352, 128}));
  EXPECT_EQ(m->metadata.GetInt("llama.rope.dimension_count"), 16);
  EXPECT_EQ(m->metadata.GetInt("llama.context_length"), 256);
  const auto& tokens = m->metadata.Find("tokenizer.ggml.tokens")->array;
  const auto& types = m->metadata.Find("tokenizer.ggml.token_type")->array;
  ASSERT_EQ(tokens.size(), 105u);
  EXPECT_EQ(tokens[3].s, "\xE2\x96\x81");
  EXPECT_EQ(tokens[104].s, "\xE2\x80\x8A");  // U+200A hair space stays as it is
  std::vector<int64_t> want(105, 1);
  want[0] = 2, want[1] = 3, want[2] = 3;  // no byte tokens at all
  for (size_t i = 0; i < 105; ++i) EXPECT_EQ(types[i].i, want[i]) << i;
}

// A tiny valid checkpoint: dim 8, hidden 16, 1 layer, 2 heads, 1 kv head, vocab 4 (negative = unshared
// classifier), seq_len 4; weights are their own float index so offsets can be checked.
std::vector<uint8_t> TinyCheckpoint(std::vector<int32_t> header = {8, 16, 1, 2, 1, 4, 4}) {
  std::vector<uint8_t> b(28);
  std::memcpy(b.data(), header.data(), 28);
  auto parsed = ParseLlama2cHeader(b, "tiny");
  if (!parsed.ok()) return b;
  auto size = Llama2cExpectedBytes(*parsed);
  b.resize(*size);
  for (uint64_t i = 0; i < (*size - 28) / 4; ++i) {
    float f = static_cast<float>(i);
    std::memcpy(b.data() + 28 + 4 * i, &f, 4);
  }
  return b;
}

TEST(Llama2c, UnsharedClassifierIsStoredLast) {
  auto bytes = TinyCheckpoint({8, 16, 1, 2, 1, -4, 4});
  auto m = ParseLlama2cCheckpoint(bytes, "tiny");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const SourceTensor* out = m->FindTensor("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->ne, (std::vector<uint64_t>{8, 4}));
  EXPECT_EQ(out->raw.data() + out->raw.size(), bytes.data() + bytes.size());
  EXPECT_NE(out->raw.data(), m->FindTensor("token_embd.weight")->raw.data());
  // wk of layer 0 starts after embedding (32), rms_att (8) and wq (64) floats.
  float first;
  std::memcpy(&first, m->FindTensor("blk.0.attn_k.weight")->raw.data(), 4);
  EXPECT_EQ(first, 104.0f);
}

std::vector<uint8_t> Header(std::vector<int32_t> h) {
  std::vector<uint8_t> b(h.size() * 4);
  std::memcpy(b.data(), h.data(), b.size());
  return b;
}

TEST(Llama2c, CorruptCheckpointsFailWithTheirOwnMessage) {
  auto short_by_one = TinyCheckpoint();
  short_by_one.pop_back();
  const int32_t big = 1 << 30;
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"truncated header", Header({8, 16, 1}), "file truncated while reading llama2.c header field n_heads"},
      {"empty file", {}, "file truncated while reading llama2.c header field dim"},
      {"zero dim", Header({0, 16, 1, 2, 1, 4, 4}), "dim must be positive, got 0"},
      {"negative hidden", Header({8, -16, 1, 2, 1, 4, 4}), "hidden_dim must be positive, got -16"},
      {"zero layers", Header({8, 16, 0, 2, 1, 4, 4}), "n_layers must be positive"},
      {"zero kv heads", Header({8, 16, 1, 2, 0, 4, 4}), "n_kv_heads must be positive"},
      {"min vocab", Header({8, 16, 1, 2, 1, INT32_MIN, 4}), "vocab_size must be positive"},
      {"zero seq_len", Header({8, 16, 1, 2, 1, 4, 0}), "seq_len must be positive"},
      {"heads not dividing dim", Header({8, 16, 1, 3, 1, 4, 4}), "n_heads (3) does not divide dim (8)"},
      {"kv heads > heads", Header({8, 16, 1, 2, 4, 4, 4}), "n_kv_heads (4) exceeds n_heads (2)"},
      {"kv heads not dividing heads", Header({12, 16, 1, 3, 2, 4, 4}), "n_kv_heads (2) does not divide n_heads (3)"},
      {"odd head size", Header({6, 16, 1, 2, 1, 4, 4}), "head size dim/n_heads = 3 is odd"},
      {"versioned export", Header({0x616b3432, 2, 0, 0, 0, 0, 0}), "versioned llama2.c export"},
      {"overflow", Header({big, big, big, 2, 1, big, 4}), "overflows 64 bits"},
      {"short by one byte", short_by_one, "too short for its header's config: expected 2620 bytes, file has 2619"},
      {"huge but short", Header({1 << 20, 8, 1, 2, 1, 4, 4}), "bytes, file has 28"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto m = ParseLlama2cCheckpoint(c.bytes, "bad.bin");
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().reason().find(c.message), std::string::npos) << m.status().ToString();
    EXPECT_EQ(m.status().file(), "bad.bin");
  }
}

TEST(Llama2c, TruncatedFileOnDisk) {
  const auto dir = std::filesystem::temp_directory_path() / ("qforge_l2c_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto bytes = ReadAll(kStoriesBin);
  bytes.resize(bytes.size() - 100);
  const std::string path = (dir / "stories260K.bin").string();
  WriteAll(path, bytes);
  auto m = OpenLlama2cSource(path, kTok512);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().reason().find("expected 1056540 bytes, file has 1056440"), std::string::npos)
      << m.status().ToString();
  // Intact checkpoint but no tokenizer beside it.
  WriteAll(path, ReadAll(kStoriesBin));
  m = OpenLlama2cSource(path);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().reason().find("no llama2.c tokenizer found"), std::string::npos) << m.status().ToString();
  // tokenizer.bin is the first name looked for.
  WriteAll((dir / "tokenizer.bin").string(), ReadAll(kTok512));
  m = OpenLlama2cSource(path);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  std::filesystem::remove_all(dir);
}

// Tokenizer bytes: max_token_length then (score, len, text) entries.
std::vector<uint8_t> Tok(std::vector<std::pair<int32_t, std::string>> entries, int32_t max_len = 8) {
  std::vector<uint8_t> b;
  auto put = [&b](const void* p, size_t n) { b.insert(b.end(), (const uint8_t*)p, (const uint8_t*)p + n); };
  put(&max_len, 4);
  for (const auto& [len, text] : entries) {
    float score = 0;
    put(&score, 4);
    put(&len, 4);
    put(text.data(), text.size());
  }
  return b;
}

TEST(Llama2c, CorruptTokenizersFailWithTheirOwnMessage) {
  auto nan_score = Tok({{5, "<unk>"}, {1, "a"}, {1, "b"}});
  const float nan = std::nanf("");
  std::memcpy(nan_score.data() + 4, &nan, 4);
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    int32_t vocab;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"fewer tokens than vocab", ReadAll(kTok105), 512, "fewer tokens than the model's vocab_size 512"},
      {"more tokens than vocab", ReadAll(kTok512), 105, "holds more tokens than the model's vocab_size 105"},
      {"missing last entry", Tok({{1, "a"}, {1, "b"}, {1, "c"}}), 4, "fewer tokens than the model's vocab_size 4"},
      {"negative length", Tok({{1, "a"}, {-3, "bcd"}, {1, "c"}}), 3, "token 1 has a negative length (-3)"},
      {"length past end", Tok({{1, "a"}, {1, "b"}, {1000, "cdefgh"}}), 3, "token 2 length 1000 runs past the end"},
      {"truncated max length", {1, 2}, 3, "file truncated while reading llama2.c tokenizer max_token_length"},
      {"negative max length", Tok({{1, "a"}, {1, "b"}, {1, "c"}}, -1), 3, "max_token_length is negative"},
      {"nan score", nan_score, 3, "token 0 has a non-finite score"},
      {"vocab too small", Tok({{1, "a"}}), 1, "cannot hold <unk>, <s> and </s>"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    Metadata md;
    Status s = ParseLlama2cTokenizer(c.bytes, "tok.bin", c.vocab, &md);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.reason().find(c.message), std::string::npos) << s.ToString();
    EXPECT_EQ(s.file(), "tok.bin");
    EXPECT_EQ(md.size(), 0u);  // nothing half-written
  }
}

TEST(ModelSource, DispatchesByWhatThePathIs) {
  auto m = OpenModelSource(kStoriesBin);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->format, "llama2c");
  auto gguf = OpenModelSource(kStoriesGguf);
  ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
  EXPECT_EQ(gguf->format, "gguf");
  auto missing = OpenModelSource(kShared + "/models/no-such-model.bin");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().reason().find("No such file"), std::string::npos) << missing.status().ToString();

  const auto dir = std::filesystem::temp_directory_path() / ("qforge_ms_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string st = (dir / "model.safetensors").string();
  WriteAll(st, {1, 2, 3});
  auto bare = OpenModelSource(st);
  ASSERT_FALSE(bare.ok());
  EXPECT_NE(bare.status().reason().find("has no config.json; pass its directory"), std::string::npos);
  // A file that is neither GGUF nor a sane llama2.c header gets the llama2.c reader's reason.
  const std::string junk = (dir / "junk.bin").string();
  WriteAll(junk, {'G', 'G'});
  auto j = OpenModelSource(junk);
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().reason().find("llama2.c header"), std::string::npos) << j.status().ToString();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace qforge

// make_hostile_files OUT_DIR: writes the hostile-input corpus, one file (or model folder) per attack class,
// plus one valid control per format, so each attack is the only thing wrong with its input.
// tests/hostile/expected.tsv names, for every entry, the qforge command that must reject it and the error
// it must give; check_hostile.sh runs them. Bytes are assembled by hand here (never by qforge's writers,
// which refuse to produce such files).
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "qforge/algo/policy.h"
#include "qforge/formats/llama2c.h"
#include "qforge/pipeline/quantize.h"
#include "synthetic_model.h"

namespace {

namespace fs = std::filesystem;
using qforge::Metadata;
using qforge::MetaValue;

fs::path g_out;

void Write(const fs::path& rel, const std::string& bytes) {
  const fs::path p = g_out / rel;
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) {
    std::cerr << "make_hostile_files: cannot write " << p << "\n";
    std::exit(1);
  }
}

// Little-endian byte assembly.
struct Bytes {
  std::string s;
  template <typename T>
  Bytes& Put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s.append(b, sizeof(T));
    return *this;
  }
  Bytes& U32(uint32_t v) { return Put(v); }
  Bytes& U64(uint64_t v) { return Put(v); }
  Bytes& I32(int32_t v) { return Put(v); }
  Bytes& F32(float v) { return Put(v); }
  Bytes& Raw(const std::string& r) {
    s += r;
    return *this;
  }
  Bytes& Str(const std::string& r) { return U64(r.size()).Raw(r); }  // GGUF string
};

// ---------------------------------------------------------------------------------------------- GGUF
constexpr uint32_t kStr = 8, kU32 = 4, kU64 = 10, kArr = 9, kBool = 7;
constexpr uint32_t kF32Type = 0, kQ4_0Type = 2;

std::string KvStr(const std::string& key, const std::string& v) { return Bytes().Str(key).U32(kStr).Str(v).s; }
std::string KvU32(const std::string& key, uint32_t v) { return Bytes().Str(key).U32(kU32).U32(v).s; }

std::string Info(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset) {
  Bytes b;
  b.Str(name).U32(static_cast<uint32_t>(ne.size()));
  for (uint64_t d : ne) b.U64(d);
  return b.U32(type).U64(offset).s;
}

// Header with explicit counts, the kv and tensor-info blobs, padding to `align`, then `data_bytes` zeros.
std::string Gguf(uint64_t n_tensors, uint64_t n_kv, const std::vector<std::string>& kvs,
                 const std::vector<std::string>& infos, uint64_t data_bytes, uint64_t align = 32) {
  Bytes b;
  b.Raw("GGUF").U32(3).U64(n_tensors).U64(n_kv);
  for (const auto& kv : kvs) b.Raw(kv);
  for (const auto& i : infos) b.Raw(i);
  if (align > 0 && align <= 4096)
    while (b.s.size() % align != 0) b.s.push_back('\0');
  b.s.append(data_bytes, '\0');
  return b.s;
}
std::string Gguf(const std::vector<std::string>& kvs, const std::vector<std::string>& infos, uint64_t data_bytes,
                 uint64_t align = 32) {
  return Gguf(infos.size(), kvs.size(), kvs, infos, data_bytes, align);
}

const std::string kArch = KvStr("general.architecture", "llama");

void GgufCases() {
  const std::string a8 = Info("a", {8}, kF32Type, 0);
  Write("gguf_valid.gguf", Gguf({kArch}, {a8}, 32));
  Write("gguf_truncated_header.gguf", Bytes().Raw("GGUF").U32(3).U32(0).s);
  Write("gguf_version_2.gguf", Bytes().Raw("GGUF").U32(2).U64(0).U64(0).s);
  Write("gguf_byte_swapped.gguf", Bytes().Raw("GGUF").U32(0x03000000).U64(0).U64(0).s);
  // Counts and lengths far larger than the file.
  Write("gguf_tensor_count_huge.gguf", Gguf(uint64_t{1} << 62, 1, {kArch}, {a8}, 32));
  Write("gguf_kv_count_huge.gguf", Gguf(1, uint64_t{1} << 60, {kArch}, {a8}, 32));
  Write("gguf_key_length_huge.gguf", Gguf(0, 1, {Bytes().U64(uint64_t{1} << 63).Raw("general.name").s}, {}, 0));
  Write("gguf_string_length_huge.gguf",
        Gguf(0, 1, {Bytes().Str("general.name").U32(kStr).U64(uint64_t{1} << 62).Raw("abc").s}, {}, 0));
  Write("gguf_array_count_huge.gguf",
        Gguf(0, 1, {Bytes().Str("x").U32(kArr).U32(kU64).U64(uint64_t{1} << 61).U64(7).s}, {}, 0));
  Write("gguf_string_array_count_huge.gguf",
        Gguf(0, 1, {Bytes().Str("tokenizer.ggml.tokens").U32(kArr).U32(kStr).U64(uint64_t{1} << 40).Str("a").s}, {}, 0));
  // Nested arrays of arrays, deeper than any model needs (the reader stops at 8 levels).
  {
    Bytes b;
    b.Str("nested");
    b.U32(kArr);
    for (int d = 0; d < 12; ++d) b.U32(kArr).U64(1);
    b.U32(kU32).U64(1).U32(5);
    Write("gguf_nested_arrays.gguf", Gguf(0, 1, {b.s}, {}, 0));
  }
  Write("gguf_bad_value_type.gguf", Gguf(0, 1, {Bytes().Str("x").U32(13).U32(0).s}, {}, 0));
  Write("gguf_bad_array_type.gguf", Gguf(0, 1, {Bytes().Str("x").U32(kArr).U32(99).U64(1).U32(0).s}, {}, 0));
  Write("gguf_bool_2.gguf", Gguf(0, 1, {Bytes().Str("x").U32(kBool).Put<uint8_t>(2).s}, {}, 0));
  // Duplicates.
  Write("gguf_duplicate_key.gguf", Gguf({kArch, KvStr("general.name", "a"), KvStr("general.name", "b")}, {}, 0));
  Write("gguf_duplicate_tensor.gguf", Gguf({kArch}, {a8, Info("a", {8}, kF32Type, 32)}, 64));
  // Alignment: 0, not a power of two, huge, wrong type.
  Write("gguf_alignment_0.gguf", Gguf({kArch, KvU32("general.alignment", 0)}, {a8}, 32));
  Write("gguf_alignment_48.gguf", Gguf({kArch, KvU32("general.alignment", 48)}, {a8}, 48, 48));
  Write("gguf_alignment_huge.gguf", Gguf({kArch, KvU32("general.alignment", 0x80000000u)}, {a8}, 32));
  Write("gguf_alignment_u64.gguf", Gguf({kArch, Bytes().Str("general.alignment").U32(kU64).U64(32).s}, {a8}, 32));
  // Shapes: dims count, zero and "negative" dims, element-count and byte-size overflow, type and blocks.
  Write("gguf_n_dims_5.gguf", Gguf({kArch}, {Info("a", {1, 1, 1, 1, 8}, kF32Type, 0)}, 32));
  Write("gguf_dim_zero.gguf", Gguf({kArch}, {Info("a", {8, 0}, kF32Type, 0)}, 32));
  Write("gguf_dim_negative.gguf", Gguf({kArch}, {Info("a", {uint64_t{1} << 63}, kF32Type, 0)}, 32));
  Write("gguf_numel_overflow.gguf", Gguf({kArch}, {Info("a", {uint64_t{1} << 32, uint64_t{1} << 32}, kF32Type, 0)}, 32));
  Write("gguf_bytes_overflow.gguf", Gguf({kArch}, {Info("a", {uint64_t{1} << 62}, kF32Type, 0)}, 32));
  Write("gguf_unknown_type.gguf", Gguf({kArch}, {Info("a", {8}, 999, 0)}, 32));
  Write("gguf_partial_block.gguf", Gguf({kArch}, {Info("a", {33}, kQ4_0Type, 0)}, 32));
  Write("gguf_name_too_long.gguf", Gguf({kArch}, {Info(std::string(64, 'n'), {8}, kF32Type, 0)}, 32));
  // Offsets: unaligned, past the end, wrapping around 2^64, overlapping.
  Write("gguf_offset_unaligned.gguf", Gguf({kArch}, {Info("a", {8}, kF32Type, 4)}, 64));
  Write("gguf_offset_past_end.gguf", Gguf({kArch}, {Info("a", {8}, kF32Type, 1 << 20)}, 32));
  Write("gguf_offset_wraps.gguf", Gguf({kArch}, {Info("a", {8}, kF32Type, ~uint64_t{31})}, 32));
  Write("gguf_overlap.gguf", Gguf({kArch}, {Info("a", {16}, kF32Type, 0), Info("b", {8}, kF32Type, 32)}, 64));
  // Invalid UTF-8 in a key, a string value and a tensor name.
  Write("gguf_utf8_key.gguf", Gguf({kArch, KvStr("general.\xff", "x")}, {}, 0));
  Write("gguf_utf8_value.gguf", Gguf({kArch, KvStr("general.name", "ab\xc3\x28")}, {}, 0));
  Write("gguf_utf8_tensor_name.gguf", Gguf({kArch}, {Info("a\xed\xa0\x80", {8}, kF32Type, 0)}, 32));
}

// ------------------------------------------------------------- GGUF models with hostile tokenizer metadata
void WriteModel(const std::string& name, qforge::SourceModel model) {
  auto policy = qforge::MakePolicy("F32", qforge::ModelFactsFromSource(model));
  if (!policy.ok()) {
    std::cerr << "make_hostile_files: " << policy.status().ToString() << "\n";
    std::exit(1);
  }
  auto r = qforge::QuantizeToGguf(model, *policy, (g_out / name).string(), {});
  if (!r.ok()) {
    std::cerr << "make_hostile_files: " << name << ": " << r.status().ToString() << "\n";
    std::exit(1);
  }
}

qforge::SourceModel TinyModel() {
  qforge::testing::SyntheticSpec spec;
  spec.n_embd = 64;
  spec.n_ff = 128;
  spec.n_layer = 1;
  spec.n_head = 2;
  spec.n_head_kv = 2;
  spec.n_vocab = 300;
  return qforge::testing::MakeSyntheticLlama(spec);
}

void TokenizerCases() {
  WriteModel("tok_valid.gguf", TinyModel());
  auto with = [](const std::string& name, const std::function<void(Metadata&)>& edit) {
    qforge::SourceModel m = TinyModel();
    edit(m.metadata);
    WriteModel(name, std::move(m));
  };
  with("tok_bos_out_of_range.gguf", [](Metadata& m) { m.Set("tokenizer.ggml.bos_token_id", MetaValue::U32(1000000)); });
  with("tok_eos_negative.gguf", [](Metadata& m) { m.Set("tokenizer.ggml.eos_token_id", MetaValue::I32(-7)); });
  with("tok_unk_huge.gguf", [](Metadata& m) { m.Set("tokenizer.ggml.unknown_token_id", MetaValue::U64(uint64_t{1} << 40)); });
  with("tok_bos_not_integer.gguf", [](Metadata& m) { m.Set("tokenizer.ggml.bos_token_id", MetaValue::String("1")); });
  with("tok_type_invalid.gguf", [](Metadata& m) {
    auto types = *m.Find("tokenizer.ggml.token_type");
    types.array[5] = MetaValue::I32(42);
    m.Set("tokenizer.ggml.token_type", types); });
  with("tok_scores_short.gguf", [](Metadata& m) { m.Set("tokenizer.ggml.scores", MetaValue::F32Array({0, 0, 0})); });
  with("tok_tokens_not_strings.gguf", [](Metadata& m) {
    m.Set("tokenizer.ggml.tokens", MetaValue::Array(qforge::GgufValueType::U32, {MetaValue::U32(1)})); });
  with("tok_tokens_nested.gguf", [](Metadata& m) {
    MetaValue inner = MetaValue::StringArray({"a"});
    m.Set("tokenizer.ggml.tokens", MetaValue::Array(qforge::GgufValueType::ARRAY, {inner})); });
  with("tok_model_unknown.gguf", [](Metadata& m) { m.Set("tokenizer.ggml.model", MetaValue::String("wordpiece")); });
  with("tok_gpt2_without_merges.gguf", [](Metadata& m) { m.Set("tokenizer.ggml.model", MetaValue::String("gpt2")); });
  // A vocabulary larger than the embedding matrix: the BOS id is a valid token but has no embedding row.
  with("tok_bos_beyond_embedding.gguf", [](Metadata& m) {
    auto tokens = *m.Find("tokenizer.ggml.tokens");
    auto scores = *m.Find("tokenizer.ggml.scores");
    auto types = *m.Find("tokenizer.ggml.token_type");
    for (int i = 0; i < 10; ++i) {
      tokens.array.push_back(MetaValue::String("\xe2\x96\x81" "extra" + std::to_string(i)));
      scores.array.push_back(MetaValue::F32(-1000.0f));
      types.array.push_back(MetaValue::I32(1));
    }
    m.Set("tokenizer.ggml.tokens", tokens);
    m.Set("tokenizer.ggml.scores", scores);
    m.Set("tokenizer.ggml.token_type", types);
    m.Set("tokenizer.ggml.bos_token_id", MetaValue::U32(305));
  });
}

// ------------------------------------------------------------------- safetensors and Hugging Face folders
// Safetensors bytes: the LE header length, the header text (padded with spaces to 8), `data` zero bytes.
std::string St(std::string header, uint64_t data_bytes) {
  while (header.size() % 8 != 0) header.push_back(' ');
  return Bytes().U64(header.size()).Raw(header).s + std::string(data_bytes, '\0');
}

struct StTensor {
  std::string name;
  std::vector<uint64_t> shape;
};

uint64_t Numel(const std::vector<uint64_t>& shape) {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

std::string ShapeJson(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// A well-formed F32 safetensors file of `tensors`, contiguous in the given order.
std::string StOf(const std::vector<StTensor>& tensors) {
  std::string h = "{";
  uint64_t pos = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t end = pos + 4 * Numel(tensors[i].shape);
    h += (i ? "," : "") + std::string("\"") + tensors[i].name + "\":{\"dtype\":\"F32\",\"shape\":" +
         ShapeJson(tensors[i].shape) + ",\"data_offsets\":[" + std::to_string(pos) + "," + std::to_string(end) + "]}";
    pos = end;
  }
  return St(h + "}", pos);
}

// The smallest complete Llama: hidden 8, 2 heads, 1 layer, vocab 8, tied embeddings.
std::vector<StTensor> HfTensors() {
  const std::string l = "model.layers.0.";
  return {{"model.embed_tokens.weight", {8, 8}},        {"model.norm.weight", {8}},
          {l + "input_layernorm.weight", {8}},          {l + "self_attn.q_proj.weight", {8, 8}},
          {l + "self_attn.k_proj.weight", {8, 8}},      {l + "self_attn.v_proj.weight", {8, 8}},
          {l + "self_attn.o_proj.weight", {8, 8}},      {l + "post_attention_layernorm.weight", {8}},
          {l + "mlp.gate_proj.weight", {16, 8}},        {l + "mlp.up_proj.weight", {16, 8}},
          {l + "mlp.down_proj.weight", {8, 16}}};
}

std::string Config(const std::string& extra = "", const std::string& vocab_size = "8", const std::string& heads = "2") {
  return "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":16,"
         "\"num_hidden_layers\":1,\"num_attention_heads\":" + heads + ",\"num_key_value_heads\":2,"
         "\"max_position_embeddings\":32,\"vocab_size\":" + vocab_size + ",\"tie_word_embeddings\":true" + extra + "}";
}

const char kTokenizerJson[] =
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"d\":3,\"e\":4,\"f\":5,\"g\":6,\"h\":7},"
    "\"merges\":[]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}";

void WriteHf(const std::string& dir, const std::string& config, const std::string& tokenizer, const std::string& st) {
  Write(dir + "/config.json", config);
  if (!tokenizer.empty()) Write(dir + "/tokenizer.json", tokenizer);
  if (!st.empty()) Write(dir + "/model.safetensors", st);
}

// A folder whose model.safetensors is `st` (everything else valid).
void StCase(const std::string& dir, const std::string& st) { WriteHf(dir, Config(), kTokenizerJson, st); }

// An entry of a hand-written header.
std::string Entry(const std::string& name, const std::string& dtype, const std::string& shape, uint64_t begin,
                  uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

void SafetensorsCases() {
  WriteHf("hf_valid", Config(), kTokenizerJson, StOf(HfTensors()));
  StCase("st_header_len_2p63", Bytes().U64(uint64_t{1} << 63).Raw("{}").s);
  StCase("st_header_len_past_end", Bytes().U64(1000).Raw("{}      ").s);
  StCase("st_header_not_object", St("[{\"a\":1}]", 0));
  StCase("st_header_invalid_json", St("{\"a\":", 0));
  StCase("st_header_utf8", St("{\"__metadata__\":{\"k\":\"\xc0\xaf\"}}", 0));
  StCase("st_header_deep_nesting", St(std::string(100000, '[') + std::string(100000, ']'), 0));
  StCase("st_offsets_past_end", St("{" + Entry("a", "F32", "[4]", 0, 16) + "}", 8));
  StCase("st_offsets_huge", St("{" + Entry("a", "F32", "[4]", ~uint64_t{0} - 15, ~uint64_t{0}) + "}", 16));
  StCase("st_offsets_reversed", St("{" + Entry("a", "F32", "[0]", 16, 8) + "}", 16));
  StCase("st_overlap", St("{" + Entry("a", "F32", "[4]", 0, 16) + "," + Entry("b", "F32", "[2]", 8, 16) + "}", 16));
  StCase("st_gap", St("{" + Entry("a", "F32", "[2]", 8, 16) + "}", 16));
  StCase("st_numel_overflow", St("{" + Entry("a", "F32", "[4294967296,4294967296]", 0, 16) + "}", 16));
  StCase("st_bytes_overflow", St("{" + Entry("a", "F32", "[4611686018427387904]", 0, 16) + "}", 16));
  StCase("st_span_mismatch", St("{" + Entry("a", "F32", "[5]", 0, 16) + "}", 16));
  StCase("st_shape_negative", St("{" + Entry("a", "F32", "[-4]", 0, 16) + "}", 16));
  StCase("st_shape_nested_arrays", St("{" + Entry("a", "F32", "[[[4]]]", 0, 16) + "}", 16));
  StCase("st_unknown_dtype", St("{" + Entry("a", "F128", "[1]", 0, 16) + "}", 16));
  StCase("st_duplicate_tensor",
         St("{" + Entry("a", "F32", "[4]", 0, 16) + "," + Entry("a", "F32", "[4]", 16, 32) + "}", 32));
  StCase("st_metadata_not_strings", St("{\"__metadata__\":{\"format\":[\"pt\"]}}", 0));
  StCase("st_too_small", "\x01\x02\x03");

  // Sharded checkpoints whose index and shards disagree.
  const auto all = HfTensors();
  const std::vector<StTensor> first(all.begin(), all.begin() + 2), second(all.begin() + 2, all.end());
  auto index = [](const std::vector<std::pair<std::string, std::string>>& map) {
    std::string s = "{\"metadata\":{\"total_size\":0},\"weight_map\":{";
    for (size_t i = 0; i < map.size(); ++i) s += (i ? "," : "") + ("\"" + map[i].first + "\":\"" + map[i].second + "\"");
    return s + "}}";
  };
  auto sharded = [&](const std::string& dir, const std::string& index_text,
                     const std::vector<std::pair<std::string, std::vector<StTensor>>>& shards) {
    WriteHf(dir, Config(), kTokenizerJson, "");
    Write(dir + "/model.safetensors.index.json", index_text);
    for (const auto& [file, tensors] : shards) Write(dir + "/" + file, StOf(tensors));
  };
  std::vector<std::pair<std::string, std::string>> map;
  for (const auto& t : first) map.push_back({t.name, "s1.safetensors"});
  for (const auto& t : second) map.push_back({t.name, "s2.safetensors"});
  const std::vector<std::pair<std::string, std::vector<StTensor>>> both = {{"s1.safetensors", first},
                                                                           {"s2.safetensors", second}};
  sharded("idx_valid", index(map), both);
  sharded("idx_not_object", "[\"s1.safetensors\"]", both);
  sharded("idx_no_weight_map", "{\"metadata\":{}}", both);
  sharded("idx_empty", index({}), both);
  {
    auto m = map;
    m[0].second = "../outside.safetensors";
    sharded("idx_path_traversal", index(m), both);
  }
  {
    auto m = map;
    m[0].second = "absent.safetensors";
    sharded("idx_missing_shard", index(m), both);
  }
  {
    auto m = map;
    m.pop_back();  // the last tensor of s2 is not in the index
    sharded("idx_tensor_not_indexed", index(m), both);
  }
  {
    auto m = map;
    m[0].second = "s2.safetensors";  // the embedding is in s1, the index says s2
    sharded("idx_wrong_shard", index(m), both);
  }
  {
    auto m = map;
    m.push_back({"model.layers.0.extra.weight", "s1.safetensors"});  // indexed but in no shard
    sharded("idx_absent_tensor", index(m), both);
  }
  {
    auto m = map;
    m.push_back({map[0].first, "s2.safetensors"});  // the same tensor listed twice
    sharded("idx_duplicate_key", index(m), both);
  }
  // The same tensor stored in both shards.
  sharded("idx_tensor_in_two_shards", index(map), {{"s1.safetensors", first}, {"s2.safetensors", [&] {
                                                      auto s = second;
                                                      s.push_back(first[1]);
                                                      return s;
                                                    }()}});
}

void ConfigAndTokenizerCases() {
  const std::string st = StOf(HfTensors());
  WriteHf("cfg_not_object", "[1,2]", kTokenizerJson, st);
  WriteHf("cfg_duplicate_key", Config(",\"hidden_size\":4096"), kTokenizerJson, st);
  WriteHf("cfg_invalid_utf8", Config(",\"name\":\"\xe2\x82\""), kTokenizerJson, st);
  // 2^31 - 1 tokens claimed by 12 bytes: must be refused before anything is sized by it.
  WriteHf("cfg_vocab_huge", Config("", "2147483647"), kTokenizerJson, st);
  WriteHf("cfg_head_dim_huge", Config(",\"head_dim\":1099511627776"), kTokenizerJson, st);
  WriteHf("cfg_heads_zero", Config("", "8", "0"), kTokenizerJson, st);
  WriteHf("cfg_bos_out_of_range", Config(",\"bos_token_id\":1000"), kTokenizerJson, st);
  WriteHf("cfg_bos_negative", Config(",\"bos_token_id\":-5"), kTokenizerJson, st);
  WriteHf("cfg_arch_unsupported", "{\"architectures\":[\"GPT2LMHeadModel\"]}", kTokenizerJson, st);
  {
    auto t = HfTensors();
    for (auto& x : t)
      if (x.name.rfind("model.layers.0.", 0) == 0) x.name.replace(13, 1, "5");
    WriteHf("cfg_layer_out_of_range", Config(), kTokenizerJson, StOf(t));
  }

  auto tok = [&](const std::string& dir, const std::string& vocab, const std::string& rest = "\"merges\":[]",
                 const std::string& top = "") {
    WriteHf(dir, Config(), "{" + top + "\"model\":{\"type\":\"BPE\",\"vocab\":{" + vocab + "}," + rest + "}}", st);
  };
  const std::string v8 = "\"a\":0,\"b\":1,\"c\":2,\"d\":3,\"e\":4,\"f\":5,\"g\":6,\"h\":7";
  WriteHf("tokjson_not_object", Config(), "\"BPE\"", st);
  tok("tokjson_id_negative", "\"a\":-1");
  tok("tokjson_id_huge", "\"a\":1099511627776");
  tok("tokjson_id_conflict", "\"a\":0,\"b\":0");
  tok("tokjson_duplicate_key", "\"a\":0,\"a\":1");
  tok("tokjson_merge_nested", v8, "\"merges\":[[[\"a\",\"b\"]]]");
  tok("tokjson_too_many_tokens", v8 + ",\"i\":8");
  tok("tokjson_invalid_utf8", "\"\xf8\x88\x80\x80\x80\":0");
  tok("tokjson_added_token_bad", v8, "\"merges\":[]", "\"added_tokens\":[{\"id\":\"x\",\"content\":1}],");
}

// ------------------------------------------------------------------------------ SentencePiece protobuf
std::string Varint(uint64_t v) {
  std::string s;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    s.push_back(static_cast<char>(b | (v ? 0x80 : 0)));
  } while (v);
  return s;
}
std::string Field(uint32_t field, const std::string& payload) {  // length-delimited
  return Varint(field << 3 | 2) + Varint(payload.size()) + payload;
}
std::string VarintField(uint32_t field, uint64_t v) { return Varint(field << 3) + Varint(v); }
std::string Piece(const std::string& text, int type) {
  return Field(1, text) + Varint(2 << 3 | 5) + Bytes().F32(-1.0f).s + VarintField(3, static_cast<uint64_t>(type));
}

std::string SpModel(const std::string& trainer = "", const std::string& extra_piece = "") {
  std::string m = Field(1, Piece("<unk>", 2)) + Field(1, Piece("<s>", 3)) + Field(1, Piece("</s>", 3));
  for (const char* p : {"a", "b", "c", "d"}) m += Field(1, Piece(p, 1));
  m += Field(1, extra_piece.empty() ? Piece("e", 1) : extra_piece);
  return m + Field(2, trainer.empty() ? VarintField(3, 2) : trainer);
}

void SentencePieceCases() {
  const std::string st = StOf(HfTensors());
  auto spm = [&](const std::string& dir, const std::string& model) {
    WriteHf(dir, Config(), "", st);
    Write(dir + "/tokenizer.model", model);
  };
  spm("spm_valid", SpModel());
  spm("spm_length_past_end", SpModel() + Varint(1 << 3 | 2) + Varint(uint64_t{1} << 40) + "xx");
  spm("spm_piece_type", SpModel("", Piece("e", 9)));
  spm("spm_unk_out_of_range", SpModel(VarintField(40, 1000)));
  spm("spm_no_pieces", Field(2, VarintField(3, 2)));
  spm("spm_varint_too_long", SpModel() + std::string(11, '\xff'));
  spm("spm_invalid_utf8", SpModel("", Piece("\xe0\x80\xaf", 1)));
  spm("spm_too_many_for_config", Field(1, Piece("<unk>", 2)) + Field(1, Piece("<s>", 3)) + Field(1, Piece("</s>", 3)) +
                                    Field(1, Piece("a", 1)) + [] {
                                      std::string more;
                                      for (int i = 0; i < 8; ++i) more += Field(1, Piece("x" + std::to_string(i), 1));
                                      return more;
                                    }());
}

// ------------------------------------------------------------------------------------------ llama2.c
struct L2cHeader {
  int32_t dim = 8, hidden = 16, layers = 1, heads = 2, kv_heads = 2, vocab = 8, seq = 16;
};

std::string L2cBytes(const L2cHeader& h, int64_t payload = -1) {
  Bytes b;
  for (int32_t v : {h.dim, h.hidden, h.layers, h.heads, h.kv_heads, h.vocab, h.seq}) b.I32(v);
  if (payload < 0) {
    auto cfg = qforge::ParseLlama2cHeader({reinterpret_cast<const uint8_t*>(b.s.data()), b.s.size()}, "gen");
    auto bytes = cfg.ok() ? qforge::Llama2cExpectedBytes(*cfg) : qforge::StatusOr<uint64_t>(uint64_t{28});
    payload = static_cast<int64_t>(*bytes) - 28;
  }
  return b.s + std::string(static_cast<size_t>(payload), '\0');
}

std::string L2cToken(float score, const std::string& text) { return Bytes().F32(score).I32(text.size()).Raw(text).s; }

std::string L2cTokenizer(int n = 8) {
  std::string s = Bytes().I32(6).s + L2cToken(0, "<unk>") + L2cToken(0, "\n<s>\n") + L2cToken(0, "\n</s>\n");
  for (int i = 3; i < n; ++i) s += L2cToken(-static_cast<float>(i), std::string(1, static_cast<char>('a' + i)));
  return s;
}

void L2cCase(const std::string& dir, const std::string& model, const std::string& tokenizer = L2cTokenizer()) {
  Write(dir + "/model.bin", model);
  Write(dir + "/tokenizer.bin", tokenizer);
}

void Llama2cCases() {
  L2cCase("l2c_valid", L2cBytes({}));
  L2cCase("l2c_header_truncated", std::string(10, '\x08'));
  L2cCase("l2c_versioned", Bytes().U32(0x616b3432).U32(2).s + std::string(256, '\0'));
  L2cHeader h;
  h.dim = -8;
  L2cCase("l2c_dim_negative", L2cBytes(h, 0));
  h = {};
  h.vocab = INT32_MIN;
  L2cCase("l2c_vocab_int_min", L2cBytes(h, 0));
  h = {};
  h.dim = h.hidden = h.layers = h.vocab = INT32_MAX - 1;
  h.heads = h.kv_heads = 1;
  L2cCase("l2c_size_overflow", L2cBytes(h, 0));
  h = {};
  h.dim = 4096, h.hidden = 11008, h.layers = 32, h.heads = 32, h.kv_heads = 32, h.vocab = 32000, h.seq = 2048;
  L2cCase("l2c_claims_7b", L2cBytes(h, 4096));  // a 26 GB model in 4 KB
  h = {};
  h.heads = 3;
  L2cCase("l2c_heads_not_divide", L2cBytes(h, 0));
  h = {};
  h.kv_heads = 4;
  L2cCase("l2c_kv_heads_exceed", L2cBytes(h, 0));
  h = {};
  h.dim = 6, h.heads = 2;
  L2cCase("l2c_odd_head", L2cBytes(h, 0));
  h = {};
  h.seq = 0;
  L2cCase("l2c_seq_zero", L2cBytes(h, 0));

  const std::string model = L2cBytes({});
  const std::string tok7 = L2cTokenizer(7);
  L2cCase("l2c_tok_max_len_negative", model, Bytes().I32(-1).s + L2cTokenizer().substr(4));
  L2cCase("l2c_tok_len_huge", model, tok7 + Bytes().F32(0).I32(INT32_MAX).Raw("x").s);
  L2cCase("l2c_tok_len_negative", model, tok7 + Bytes().F32(0).I32(-3).Raw("xyz").s);
  L2cCase("l2c_tok_fewer", model, L2cTokenizer(3));
  L2cCase("l2c_tok_extra", model, L2cTokenizer() + L2cToken(0, "zz"));
  L2cCase("l2c_tok_nan_score", model, tok7 + L2cToken(std::numeric_limits<float>::quiet_NaN(), "h"));
  L2cCase("l2c_tok_invalid_utf8", model, tok7 + L2cToken(0, "\x80"));
  L2cCase("l2c_tok_empty", model, "");
}


// ------------------------------------------------------------- imatrix files (quantize --imatrix, dry run)
// Legacy .dat: int32 entry count; per entry int32 name length, name, int32 ncall, int32 nval, nval floats;
// optional trailer int32 chunk count, int32 dataset name length, name.
std::string DatEntry(const std::string& name, int32_t ncall, int32_t nval, float value, int32_t stored = -1) {
  Bytes b;
  b.I32(static_cast<int32_t>(name.size())).Raw(name).I32(ncall).I32(nval);
  for (int32_t i = 0; i < (stored < 0 ? nval : stored); ++i) b.F32(value);
  return b.s;
}

void ImatrixCases() {
  const std::string q = "blk.0.attn_q.weight";  // a 64-column matrix of the tiny model (tok_valid.gguf)
  auto dat = [](const std::string& name, int32_t n, const std::string& body) {
    Write("imx/" + name, Bytes().I32(n).s + body);
  };
  dat("valid.dat", 1, DatEntry(q, 10, 64, 1.0f));
  dat("count_huge.dat", INT32_MAX, DatEntry(q, 10, 64, 1.0f));
  dat("name_length_huge.dat", 1, Bytes().I32(1 << 30).Raw(q).s);
  dat("values_past_end.dat", 1, DatEntry(q, 10, 1 << 30, 1.0f, 4));
  dat("value_count_negative.dat", 1, DatEntry(q, 10, -1, 1.0f, 0));
  dat("duplicate_tensor.dat", 2, DatEntry(q, 10, 64, 1.0f) + DatEntry(q, 10, 64, 1.0f));
  dat("nan_sum.dat", 1, DatEntry(q, 10, 64, std::numeric_limits<float>::quiet_NaN()));
  dat("negative_sum.dat", 1, DatEntry(q, 10, 64, -1.0f));
  dat("wrong_columns.dat", 1, DatEntry(q, 10, 63, 1.0f));
  dat("dataset_length_huge.dat", 1, DatEntry(q, 10, 64, 1.0f) + Bytes().I32(4).I32(1 << 30).Raw("x").s);
  // GGUF imatrix: NAME.in_sum2 (F32 [cols]) and NAME.counts (F32 [1]) per weight.
  auto gguf = [&](const std::string& name, const std::vector<uint64_t>& counts_ne, float sum, float count) {
    Bytes data;
    for (int i = 0; i < 64; ++i) data.F32(sum);
    for (uint64_t i = 0; i < counts_ne[0]; ++i) data.F32(count);
    const std::string header = Gguf({KvStr("general.type", "imatrix")},
                                    {Info(q + ".in_sum2", {64}, kF32Type, 0), Info(q + ".counts", counts_ne, kF32Type, 256)},
                                    0);
    Write("imx/" + name, header + data.s);
  };
  gguf("valid.gguf", {1}, 1.0f, 10.0f);
  gguf("counts_shape.gguf", {2}, 1.0f, 10.0f);
  gguf("counts_nan.gguf", {1}, 1.0f, std::numeric_limits<float>::quiet_NaN());
  Write("imx/no_entries.gguf", Gguf({KvStr("general.type", "imatrix")}, {Info("x", {8}, kF32Type, 0)}, 32));
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_hostile_files OUT_DIR\n";
    return 2;
  }
  g_out = argv[1];
  fs::remove_all(g_out);
  fs::create_directories(g_out);
  GgufCases();
  TokenizerCases();
  SafetensorsCases();
  ConfigAndTokenizerCases();
  SentencePieceCases();
  Llama2cCases();
  ImatrixCases();
  return 0;
}

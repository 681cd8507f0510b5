// Tests of the Hugging Face folder reader: tensor name mapping, the Q/K row permutation, config.json
// parsing per architecture, SentencePiece and tokenizer.json vocabularies, and a tiny model folder read
// end to end (tied embeddings, BF16 q_proj permuted, unknown tensors rejected).
#include <filesystem>
#include <fstream>
#include <numeric>

#include <gtest/gtest.h>

#include "qforge/core/fp16.h"
#include "qforge/formats/hf_model.h"
#include "qforge/formats/safetensors.h"
#include "qforge/formats/sentencepiece_model.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;
const std::string kShared = QFORGE_SHARED_DIR;

std::string TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("qforge_hf_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

TEST(HfNames, MappingTable) {
  const std::pair<const char*, const char*> table[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
      {"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
      {"model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight"},
      {"model.layers.3.self_attn.k_proj.bias", "blk.3.attn_k.bias"},
      {"model.layers.12.self_attn.v_proj.weight", "blk.12.attn_v.weight"},
      {"model.layers.1.self_attn.o_proj.weight", "blk.1.attn_output.weight"},
      {"model.layers.1.post_attention_layernorm.weight", "blk.1.ffn_norm.weight"},
      {"model.layers.2.mlp.gate_proj.weight", "blk.2.ffn_gate.weight"},
      {"model.layers.2.mlp.up_proj.weight", "blk.2.ffn_up.weight"},
      {"model.layers.2.mlp.down_proj.weight", "blk.2.ffn_down.weight"},
  };
  for (const auto& [hf, gguf] : table) EXPECT_EQ(HfToGgufTensorName(hf).value_or("?"), gguf) << hf;
  for (const char* bad : {"model.layers.0.self_attn.rotary_emb.inv_freq", "model.layers..mlp.up_proj.weight",
                          "model.layers.x.mlp.up_proj.weight", "model.layers.01.mlp.up_proj.weight",
                          "model.embed_tokens", "transformer.wte.weight"})
    EXPECT_FALSE(HfToGgufTensorName(bad).has_value()) << bad;
}

TEST(HfPermute, HandComputedAndInverse) {
  // One column; head_dim 4: HF rows [x0 x1 | y0 y1] -> GGUF pairs [x0 y0 x1 y1], per head.
  std::vector<float> src = {0, 1, 2, 3, 4, 5, 6, 7}, dst(8);
  PermuteQkRowsHfToGguf(src.data(), dst.data(), 8, 1, 2);
  EXPECT_EQ(dst, (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
  std::vector<float> s6 = {0, 1, 2, 3, 4, 5}, d6(6);
  PermuteQkRowsHfToGguf(s6.data(), d6.data(), 6, 1, 1);
  EXPECT_EQ(d6, (std::vector<float>{0, 3, 1, 4, 2, 5}));
  // Random-ish matrix, several heads and columns: the two directions are inverses.
  const int64_t rows = 4 * 8, cols = 3;
  std::vector<float> x(rows * cols), y(x.size()), z(x.size());
  std::iota(x.begin(), x.end(), 0.5f);
  PermuteQkRowsGgufToHf(x.data(), y.data(), rows, cols, 4);
  EXPECT_NE(x, y);
  PermuteQkRowsHfToGguf(y.data(), z.data(), rows, cols, 4);
  EXPECT_EQ(x, z);
  // Rows move whole: row 1 of GGUF (head 0, pair 0, second element) is HF row head_dim/2 = 4.
  EXPECT_EQ(y[4 * cols], x[1 * cols]);
}

const char* kLlamaConfig = R"({"architectures":["LlamaForCausalLM"],"hidden_size":4096,"intermediate_size":11008,
  "max_position_embeddings":4096,"num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":32,
  "rms_norm_eps":1e-05,"rope_theta":10000.0,"tie_word_embeddings":false,"vocab_size":32000,"bos_token_id":1,
  "eos_token_id":2,"model_type":"llama","torch_dtype":"float16"})";

TEST(HfConfig, LlamaMistralQwen2) {
  auto l = ParseHfConfig(kLlamaConfig, "config.json");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->gguf_arch, "llama");
  EXPECT_TRUE(l->permute_qk());
  EXPECT_EQ(l->head_dim, 128);
  EXPECT_EQ(l->n_head_kv, 32);
  Metadata m;
  HfConfigToMetadata(*l, &m);
  EXPECT_EQ(m.GetString("general.architecture"), "llama");
  EXPECT_EQ(m.GetInt("llama.context_length"), 4096);
  EXPECT_EQ(m.GetInt("llama.embedding_length"), 4096);
  EXPECT_EQ(m.GetInt("llama.feed_forward_length"), 11008);
  EXPECT_EQ(m.GetInt("llama.block_count"), 32);
  EXPECT_EQ(m.GetInt("llama.rope.dimension_count"), 128);
  EXPECT_EQ(m.GetInt("llama.vocab_size"), 32000);
  EXPECT_FLOAT_EQ(*m.GetFloat("llama.attention.layer_norm_rms_epsilon"), 1e-5f);

  auto mi = ParseHfConfig(R"({"architectures":["MistralForCausalLM"],"hidden_size":4096,"intermediate_size":14336,
    "max_position_embeddings":32768,"num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":8,
    "rms_norm_eps":1e-05,"rope_theta":1000000.0,"sliding_window":null,"vocab_size":32768})", "config.json");
  ASSERT_TRUE(mi.ok()) << mi.status().ToString();
  EXPECT_EQ(mi->gguf_arch, "llama");
  EXPECT_EQ(mi->n_head_kv, 8);
  EXPECT_DOUBLE_EQ(mi->rope_theta, 1e6);

  auto q = ParseHfConfig(R"({"architectures":["Qwen2ForCausalLM"],"hidden_size":896,"intermediate_size":4864,
    "max_position_embeddings":32768,"num_attention_heads":14,"num_hidden_layers":24,"num_key_value_heads":2,
    "rms_norm_eps":1e-06,"rope_theta":1000000.0,"tie_word_embeddings":true,"vocab_size":151936,
    "bos_token_id":151643,"eos_token_id":[151645,151643]})", "config.json");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->gguf_arch, "qwen2");
  EXPECT_FALSE(q->permute_qk());
  EXPECT_TRUE(q->tie_word_embeddings);
  EXPECT_EQ(q->head_dim, 64);
  EXPECT_EQ(q->eos_id, 151645);
  Metadata mq;
  HfConfigToMetadata(*q, &mq);
  EXPECT_EQ(mq.GetInt("qwen2.attention.head_count_kv"), 2);
}

TEST(HfConfig, Errors) {
  struct Case { const char* json; const char* message; };
  const Case cases[] = {
      {R"({"architectures":["GPT2LMHeadModel"]})",
       "unsupported architecture 'GPT2LMHeadModel' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)"},
      {R"({"architectures":"x"})", "missing \"architectures\""},
      {R"([1])", "not a JSON object"},
      {R"({"architectures":)", "invalid JSON"},
      {R"({"architectures":["LlamaForCausalLM"],"hidden_size":64})", "missing \"max_position_embeddings\""},
      {R"({"architectures":["LlamaForCausalLM"],"hidden_size":-4,"max_position_embeddings":1})", "\"hidden_size\" is -4"},
      {R"({"architectures":["LlamaForCausalLM"],"max_position_embeddings":8,"hidden_size":64,"intermediate_size":8,
          "num_hidden_layers":1,"num_attention_heads":8,"num_key_value_heads":3,"vocab_size":5})", "not a multiple of num_key_value_heads"},
      {R"({"architectures":["LlamaForCausalLM"],"max_position_embeddings":8,"hidden_size":64,"intermediate_size":8,
          "num_hidden_layers":1,"num_attention_heads":8,"vocab_size":5,"rope_scaling":{"type":"yarn"}})", "unsupported rope_scaling type 'yarn'"},
  };
  for (const auto& c : cases) {
    auto r = ParseHfConfig(c.json, "config.json");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.status().reason().find(c.message), std::string::npos) << r.status().ToString();
    EXPECT_EQ(r.status().file(), "config.json");
  }
}

TEST(HfSentencePiece, Tok512AndTok105) {
  auto sp = ReadSentencePieceModel(kShared + "/models/stories260K/tok512.model");
  ASSERT_TRUE(sp.ok()) << sp.status().ToString();
  ASSERT_EQ(sp->pieces.size(), 512u);
  EXPECT_EQ(sp->pieces[3].piece, "<0x00>");
  EXPECT_EQ(sp->pieces[3].type, SpPieceType::kByte);
  EXPECT_EQ(sp->pieces[0].type, SpPieceType::kUnknown);
  EXPECT_EQ(sp->pieces[1].type, SpPieceType::kControl);
  EXPECT_EQ(sp->bos_id, 1);
  EXPECT_EQ(sp->eos_id, 2);
  EXPECT_EQ(sp->unk_id, 0);
  EXPECT_TRUE(sp->byte_fallback);
  EXPECT_EQ(sp->model_type, 2);  // BPE

  auto sp105 = ReadSentencePieceModel(kShared + "/models/babyllama-tok105/tok105.model");
  ASSERT_TRUE(sp105.ok()) << sp105.status().ToString();
  EXPECT_EQ(sp105->pieces.size(), 105u);
  for (const auto& p : sp105->pieces) EXPECT_NE(p.type, SpPieceType::kByte) << p.piece;

  const uint8_t truncated[] = {0x0a, 0x20, 0x0a, 0x01};
  auto bad = ParseSentencePieceModel(truncated, "bad.model");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().reason().find("runs past the end"), std::string::npos) << bad.status().ToString();
}

TEST(HfTokenizerJson, ByteLevelBpeAndByteFallback) {
  HfConfig c;
  c.gguf_arch = "llama";
  c.n_vocab = 8;
  const char* gpt2 = R"({"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"Ġ":3},"merges":["a b",["Ġ","a"]]},
    "added_tokens":[{"id":4,"content":"<|begin_of_text|>","special":true}],
    "pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\p{N}{1,3}"}},
      {"type":"ByteLevel"}]}})";
  Metadata m;
  Status s = ParseHfTokenizerJson(gpt2, R"({"bos_token":"<|begin_of_text|>","add_bos_token":true})", c, "tokenizer.json", &m);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(m.GetString("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(m.GetString("tokenizer.ggml.pre"), "llama-bpe");
  const MetaValue* tokens = m.Find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  ASSERT_EQ(tokens->array.size(), 8u);  // padded to vocab_size
  EXPECT_EQ(tokens->array[4].s, "<|begin_of_text|>");
  EXPECT_EQ(tokens->array[7].s, "[PAD7]");
  EXPECT_EQ(m.Find("tokenizer.ggml.token_type")->array[4].AsInt(), 3);
  EXPECT_EQ(m.Find("tokenizer.ggml.merges")->array[1].s, "Ġ a");
  EXPECT_EQ(m.GetInt("tokenizer.ggml.bos_token_id"), 4);

  const char* spm = R"({"model":{"type":"BPE","byte_fallback":true,"unk_token":"<unk>",
    "vocab":{"<unk>":0,"<s>":1,"</s>":2,"<0x00>":3,"▁":4,"t":5,"▁t":6},"merges":["▁ t"]},
    "added_tokens":[{"id":1,"content":"<s>","special":true},{"id":2,"content":"</s>","special":true}]})";
  Metadata m2;
  c.n_vocab = 7;
  s = ParseHfTokenizerJson(spm, "", c, "tokenizer.json", &m2);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(m2.GetString("tokenizer.ggml.model"), "llama");
  const auto& types = m2.Find("tokenizer.ggml.token_type")->array;
  EXPECT_EQ(types[0].AsInt(), 2);
  EXPECT_EQ(types[1].AsInt(), 3);
  EXPECT_EQ(types[3].AsInt(), 6);
  const auto& scores = m2.Find("tokenizer.ggml.scores")->array;
  EXPECT_EQ(scores[6].f, 0.0);                 // merge rank 0
  EXPECT_LT(scores[5].f, scores[6].f);         // characters rank below merges
  EXPECT_EQ(m2.GetInt("tokenizer.ggml.unknown_token_id"), 0);

  Metadata m3;
  s = ParseHfTokenizerJson(R"({"model":{"type":"Unigram","vocab":[]}})", "", c, "tokenizer.json", &m3);
  EXPECT_NE(s.reason().find("unsupported tokenizer model type 'Unigram'"), std::string::npos) << s.ToString();
}

// A two-layer toy model folder: dim 8, 2 heads, 1 KV head, vocab 512 with tok512.model.
class HfFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("folder");
    std::ofstream(dir_ + "/config.json") << R"({"architectures":["LlamaForCausalLM"],"hidden_size":8,
      "intermediate_size":12,"max_position_embeddings":64,"num_attention_heads":2,"num_hidden_layers":2,
      "num_key_value_heads":1,"rms_norm_eps":1e-05,"vocab_size":512,"tie_word_embeddings":true,
      "bos_token_id":1,"eos_token_id":2})";
    fs::copy_file(kShared + "/models/stories260K/tok512.model", dir_ + "/tokenizer.model");
    Add("model.embed_tokens.weight", {512, 8});
    Add("model.norm.weight", {8});
    for (int l = 0; l < 2; ++l) {
      std::string p = "model.layers." + std::to_string(l) + ".";
      Add(p + "input_layernorm.weight", {8});
      Add(p + "post_attention_layernorm.weight", {8});
      Add(p + "self_attn.q_proj.weight", {8, 8}, DType::kBF16);
      Add(p + "self_attn.k_proj.weight", {4, 8});
      Add(p + "self_attn.v_proj.weight", {4, 8});
      Add(p + "self_attn.o_proj.weight", {8, 8});
      Add(p + "mlp.gate_proj.weight", {12, 8});
      Add(p + "mlp.up_proj.weight", {12, 8});
      Add(p + "mlp.down_proj.weight", {8, 12});
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Add(const std::string& name, std::vector<int64_t> shape, DType dt = DType::kF32) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<uint8_t> bytes;
    for (int64_t i = 0; i < n; ++i) {
      float v = static_cast<float>(i % 97) + 0.25f * static_cast<float>(buffers_.size());
      if (dt == DType::kBF16) {
        uint16_t h = F32ToBF16(v);
        bytes.insert(bytes.end(), {uint8_t(h), uint8_t(h >> 8)});
      } else {
        const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
        bytes.insert(bytes.end(), p, p + 4);
      }
    }
    buffers_.push_back(std::make_unique<std::vector<uint8_t>>(std::move(bytes)));
    out_.push_back({name, dt, shape, *buffers_.back()});
  }
  Status Write() { return WriteSafetensors(dir_ + "/model.safetensors", out_); }
  std::string dir_;
  std::vector<std::unique_ptr<std::vector<uint8_t>>> buffers_;
  std::vector<SafetensorsTensorOut> out_;
};

TEST_F(HfFolder, ReadsToyModel) {
  ASSERT_TRUE(Write().ok());
  auto m = OpenHfSource(dir_);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->format, "hf");
  EXPECT_EQ(m->metadata.GetString("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(m->metadata.Find("tokenizer.ggml.tokens")->array.size(), 512u);
  EXPECT_EQ(m->metadata.GetInt("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(m->metadata.GetInt("llama.rope.dimension_count"), 4);
  EXPECT_EQ(m->tensors.size(), 2u + 2 * 9);
  EXPECT_EQ(m->FindTensor("output.weight"), nullptr);  // tied
  EXPECT_EQ(m->tensors.front().name, "token_embd.weight");
  const SourceTensor* q = m->FindTensor("blk.1.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->ne, (std::vector<uint64_t>{8, 8}));
  EXPECT_EQ(q->type, GgmlType::BF16);
  EXPECT_TRUE(q->raw.empty());  // permuted, so no raw bytes
  std::vector<float> got(64), hf(64), want(64);
  ASSERT_TRUE(q->read_f32(got.data()).ok());
  const auto& src = out_[2 + 9 + 2];  // layer 1 q_proj
  ASSERT_EQ(src.name, "model.layers.1.self_attn.q_proj.weight");
  for (int i = 0; i < 64; ++i) hf[i] = BF16ToF32(uint16_t(src.data[2 * i] | (src.data[2 * i + 1] << 8)));
  PermuteQkRowsHfToGguf(hf.data(), want.data(), 8, 8, 2);
  EXPECT_EQ(got, want);
  const SourceTensor* v = m->FindTensor("blk.0.attn_v.weight");
  ASSERT_FALSE(v->raw.empty());
  EXPECT_EQ(v->ne, (std::vector<uint64_t>{8, 4}));
}

TEST_F(HfFolder, UnknownAndMissingTensors) {
  Add("model.layers.0.self_attn.rotary_emb.inv_freq", {2});  // skipped
  Add("model.layers.0.mlp.extra.weight", {2});
  ASSERT_TRUE(Write().ok());
  auto m = OpenHfSource(dir_);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().reason().find("unknown tensor 'model.layers.0.mlp.extra.weight'"), std::string::npos)
      << m.status().ToString();
  out_.pop_back();
  out_.erase(out_.begin() + 1);  // model.norm.weight
  ASSERT_TRUE(Write().ok());
  m = OpenHfSource(dir_);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().reason().find("missing tensor output_norm.weight"), std::string::npos) << m.status().ToString();
}

}  // namespace
}  // namespace qforge

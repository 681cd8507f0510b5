// A Hugging Face model folder as a SourceModel: config.json -> <arch>.* keys, tokenizer -> tokenizer.ggml.*,
// safetensors tensors renamed to GGUF names with shapes reversed into ggml order, and (arch "llama") q/k rows
// permuted from HF's rotate-half layout to llama.cpp's interleaved RoPE layout, lazily, one tensor at a time.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "qforge/core/fp16.h"
#include "qforge/formats/hf_model.h"
#include "qforge/formats/safetensors.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

struct Suffix {
  const char* hf;
  const char* gguf;
};
constexpr Suffix kLayerSuffixes[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},        {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},        {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},        {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},   {"self_attn.o_proj.bias", "attn_output.bias"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},         {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};
// Every layer must have these (biases are optional: Qwen2 has q/k/v biases, Llama none).
constexpr const char* kRequiredLayerTensors[] = {"attn_norm.weight", "attn_q.weight", "attn_k.weight",
                                                 "attn_v.weight", "attn_output.weight", "ffn_norm.weight",
                                                 "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"};

// "blk.12.attn_q.weight" -> 12; -1 for non-block tensors.
int64_t LayerOf(const std::string& gguf_name) {
  if (gguf_name.rfind("blk.", 0) != 0) return -1;
  return std::stoll(gguf_name.substr(4));
}

void ToF32(std::span<const uint8_t> src, DType dtype, float* dst) {
  if (dtype == DType::kF32) {
    std::memcpy(dst, src.data(), src.size());
    return;
  }
  const size_t n = src.size() / 2;
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src.data() + 2 * i, 2);  // the mapping offset need not be 2-byte aligned
    dst[i] = dtype == DType::kF16 ? F16ToF32(h) : BF16ToF32(h);
  }
}

StatusOr<std::string> ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Status::Error("cannot open file", p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Builds the SourceTensor for one checkpoint tensor; `heads` > 0 means "permute q/k rows for that many heads".
StatusOr<SourceTensor> MakeTensor(const SafetensorsTensor& t, const std::string& gguf_name, int64_t heads) {
  SourceTensor st;
  st.name = gguf_name;
  if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16)
    return Status::Error("tensor '" + t.name + "' has dtype " + std::string(DTypeName(t.dtype)) +
                         " (supported: F32, F16, BF16)", t.file);
  if (t.shape.empty() || t.shape.size() > 4)
    return Status::Error("tensor '" + t.name + "' has " + std::to_string(t.shape.size()) + " dimensions (1..4 supported)", t.file);
  for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) st.ne.push_back(static_cast<uint64_t>(*it));
  st.type = t.dtype == DType::kF32 ? GgmlType::F32 : t.dtype == DType::kF16 ? GgmlType::F16 : GgmlType::BF16;
  const int64_t rows = t.shape[0];
  const int64_t cols = static_cast<int64_t>(t.shape.size() == 1 ? 1 : st.numel() / std::max<int64_t>(rows, 1));
  if (heads > 0 && (t.shape.size() > 2 || rows % (2 * heads) != 0))
    return Status::Error("tensor '" + t.name + "' with shape [" + std::to_string(rows) + ", ...] cannot be split into " +
                         std::to_string(heads) + " heads of row pairs", t.file);
  const auto data = t.data;
  const DType dtype = t.dtype;
  if (heads == 0) st.raw = data;
  st.read_f32 = [data, dtype, rows, cols, heads](float* dst) -> Status {
    if (heads == 0) {
      ToF32(data, dtype, dst);
      return Status::Ok();
    }
    std::vector<float> tmp(static_cast<size_t>(rows * cols));
    ToF32(data, dtype, tmp.data());
    PermuteQkRowsHfToGguf(tmp.data(), dst, rows, cols, heads);
    return Status::Ok();
  };
  return st;
}

}  // namespace

std::optional<std::string> HfToGgufTensorName(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  const std::string prefix = "model.layers.";
  if (hf.rfind(prefix, 0) != 0) return std::nullopt;
  size_t p = prefix.size(), q = p;
  while (q < hf.size() && q - p < 9 && hf[q] >= '0' && hf[q] <= '9') ++q;
  if (q == p || q >= hf.size() || hf[q] != '.' || (hf[p] == '0' && q - p > 1)) return std::nullopt;
  const std::string rest = hf.substr(q + 1);
  for (const auto& s : kLayerSuffixes)
    if (rest == s.hf) return "blk." + hf.substr(p, q - p) + "." + s.gguf;
  return std::nullopt;
}

// Row r = h*hd + j*half + i (HF: halves) goes to h*hd + 2*i + j (GGUF: interleaved pairs),
// i.e. view(n_head, 2, half, cols).swapaxes(1, 2).
void PermuteQkRowsHfToGguf(const float* src, float* dst, int64_t rows, int64_t cols, int64_t n_head) {
  const int64_t hd = rows / n_head, half = hd / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < half; ++i)
        std::memcpy(dst + (h * hd + 2 * i + j) * cols, src + (h * hd + j * half + i) * cols, cols * sizeof(float));
}

void PermuteQkRowsGgufToHf(const float* src, float* dst, int64_t rows, int64_t cols, int64_t n_head) {
  const int64_t hd = rows / n_head, half = hd / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < half; ++i)
        std::memcpy(dst + (h * hd + j * half + i) * cols, src + (h * hd + 2 * i + j) * cols, cols * sizeof(float));
}

StatusOr<SourceModel> OpenHfSource(const std::string& dir) {
  const fs::path d(dir);
  const std::string config_path = (d / "config.json").string();
  QF_ASSIGN_OR_RETURN(std::string config_text, ReadText(config_path));
  QF_ASSIGN_OR_RETURN(HfConfig config, ParseHfConfig(config_text, config_path));

  SourceModel model;
  model.path = dir;
  model.format = "hf";
  std::string name = fs::path(dir).lexically_normal().filename().string();
  if (name.empty() || name == ".") name = fs::absolute(d).lexically_normal().parent_path().filename().string();
  model.metadata.Set("general.architecture", MetaValue::String(config.gguf_arch));
  model.metadata.Set("general.name", MetaValue::String(name));
  HfConfigToMetadata(config, &model.metadata);

  QF_ASSIGN_OR_RETURN(SafetensorsCheckpoint ckpt, ReadSafetensorsCheckpoint(dir));
  for (const auto& shard : ckpt.shards) model.keep_alive.push_back(shard.file);
  for (const SafetensorsTensor* t : ckpt.tensors) {
    if (t->name.ends_with(".rotary_emb.inv_freq")) continue;  // recomputed by every runtime
    if (t->name == "lm_head.weight" && config.tie_word_embeddings) continue;
    auto gguf = HfToGgufTensorName(t->name);
    if (!gguf)
      return Status::Error("unknown tensor '" + t->name + "' (not part of " + config.architecture + ")", t->file);
    int64_t layer = LayerOf(*gguf);
    if (layer >= config.n_layer)
      return Status::Error("tensor '" + t->name + "' is in layer " + std::to_string(layer) +
                           " but config.json has num_hidden_layers " + std::to_string(config.n_layer), t->file);
    int64_t heads = 0;
    if (config.permute_qk() && gguf->find(".attn_q.") != std::string::npos) heads = config.n_head;
    if (config.permute_qk() && gguf->find(".attn_k.") != std::string::npos) heads = config.n_head_kv;
    QF_ASSIGN_OR_RETURN(SourceTensor st, MakeTensor(*t, *gguf, heads));
    model.tensors.push_back(std::move(st));
  }

  // Every model tensor must be there; an absent lm_head means tied embeddings (llama.cpp reuses token_embd).
  std::vector<std::string> required = {"token_embd.weight", "output_norm.weight"};
  for (int64_t l = 0; l < config.n_layer; ++l)
    for (const char* s : kRequiredLayerTensors) required.push_back("blk." + std::to_string(l) + "." + s);
  for (const auto& r : required)
    if (!model.FindTensor(r)) return Status::Error("missing tensor " + r + " (GGUF name)", dir);
  const SourceTensor* embd = model.FindTensor("token_embd.weight");
  if (embd->ne.size() != 2 || embd->ne[0] != uint64_t(config.n_embd) || embd->ne[1] != uint64_t(config.n_vocab))
    return Status::Error("token_embd.weight shape does not match hidden_size x vocab_size in config.json", dir);
  // Only now is vocab_size backed by real bytes (the embedding): the tokenizer pads its vocabulary up to
  // it, so reading it earlier would let a 12-byte config field allocate billions of padding tokens.
  QF_RETURN_IF_ERROR(ReadHfTokenizer(dir, config, &model.metadata));

  if (config.rope_scaling_type == "llama3") {
    auto factors = std::make_shared<std::vector<float>>(Llama3RopeFactors(config));
    SourceTensor st;
    st.name = "rope_freqs.weight";
    st.ne = {factors->size()};
    st.raw = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(factors->data()), factors->size() * 4);
    st.read_f32 = [factors](float* dst) {
      std::copy(factors->begin(), factors->end(), dst);
      return Status::Ok();
    };
    model.tensors.push_back(std::move(st));
    model.keep_alive.push_back(factors);
  }

  // Deterministic, llama.cpp-like order: token_embd, rope_freqs, blocks by layer, output_norm, output.
  auto rank = [](const SourceTensor& t) -> std::pair<int64_t, std::string> {
    if (t.name == "token_embd.weight") return {-2, t.name};
    if (t.name == "rope_freqs.weight") return {-1, t.name};
    int64_t l = LayerOf(t.name);
    return {l >= 0 ? l : INT64_MAX, t.name};
  };
  std::stable_sort(model.tensors.begin(), model.tensors.end(),
                   [&](const SourceTensor& a, const SourceTensor& b) { return rank(a) < rank(b); });
  return model;
}

}  // namespace qforge

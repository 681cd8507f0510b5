// Published model configurations (config.json of each model on the Hugging Face hub) turned into a
// data-less SourceModel: GGUF tensor names and shapes, F16, plus the llama.* keys the policy reads.
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "qforge/plan/memory_plan.h"

namespace qforge {
namespace {

bool EqualNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

void AddTensor(SourceModel* m, std::string name, std::vector<uint64_t> ne, GgmlType type) {
  SourceTensor t;
  t.name = std::move(name);
  t.ne = std::move(ne);
  t.type = type;
  m->tensors.push_back(std::move(t));
}

}  // namespace

const std::vector<ModelPreset>& Presets() {
  // name, n_embd, n_ff, n_layer, n_head, n_head_kv, n_vocab, tied, qkv_bias
  static const std::vector<ModelPreset> kPresets = {
      {"TinyLlama-1.1B", 2048, 5632, 22, 32, 4, 32000, false, false},
      {"Llama-3.2-1B", 2048, 8192, 16, 32, 8, 128256, true, false},
      {"Llama-3.2-3B", 3072, 8192, 28, 24, 8, 128256, true, false},
      {"Llama-2-7B", 4096, 11008, 32, 32, 32, 32000, false, false},
      {"Mistral-7B", 4096, 14336, 32, 32, 8, 32000, false, false},
      {"Qwen2-7B", 3584, 18944, 28, 28, 4, 152064, false, true},
      {"Llama-3-8B", 4096, 14336, 32, 32, 8, 128256, false, false},
      {"Llama-2-13B", 5120, 13824, 40, 40, 40, 32000, false, false},
      {"Llama-2-70B", 8192, 28672, 80, 64, 8, 32000, false, false},
      {"Llama-3-70B", 8192, 28672, 80, 64, 8, 128256, false, false},
      {"Llama-3.1-405B", 16384, 53248, 126, 128, 8, 128256, false, false},
  };
  return kPresets;
}

const ModelPreset* FindPreset(std::string_view name) {
  for (const auto& p : Presets())
    if (EqualNoCase(p.name, name)) return &p;
  return nullptr;
}

SourceModel SynthesizeModel(const ModelPreset& p) {
  SourceModel m;
  m.path = p.name;
  m.format = "preset";
  const std::string arch = p.qkv_bias ? "qwen2" : "llama";
  const auto u32 = [](int v) { return MetaValue::U32(static_cast<uint32_t>(v)); };
  m.metadata.Set("general.architecture", MetaValue::String(arch));
  m.metadata.Set("general.name", MetaValue::String(p.name));
  m.metadata.Set(arch + ".vocab_size", u32(p.n_vocab));
  m.metadata.Set(arch + ".embedding_length", u32(p.n_embd));
  m.metadata.Set(arch + ".feed_forward_length", u32(p.n_ff));
  m.metadata.Set(arch + ".block_count", u32(p.n_layer));
  m.metadata.Set(arch + ".attention.head_count", u32(p.n_head));
  m.metadata.Set(arch + ".attention.head_count_kv", u32(p.n_head_kv));

  const uint64_t embd = p.n_embd, ff = p.n_ff, vocab = p.n_vocab;
  const uint64_t head_dim = embd / p.n_head;
  const uint64_t q_dim = head_dim * p.n_head, kv_dim = head_dim * p.n_head_kv;
  // Order as convert_hf_to_gguf writes Llama files; norms are F32 in every GGUF, matrices F16.
  AddTensor(&m, "token_embd.weight", {embd, vocab}, GgmlType::F16);
  for (int i = 0; i < p.n_layer; ++i) {
    const std::string b = fmt::format("blk.{}.", i);
    AddTensor(&m, b + "attn_norm.weight", {embd}, GgmlType::F32);
    AddTensor(&m, b + "attn_q.weight", {embd, q_dim}, GgmlType::F16);
    AddTensor(&m, b + "attn_k.weight", {embd, kv_dim}, GgmlType::F16);
    AddTensor(&m, b + "attn_v.weight", {embd, kv_dim}, GgmlType::F16);
    if (p.qkv_bias) {
      AddTensor(&m, b + "attn_q.bias", {q_dim}, GgmlType::F32);
      AddTensor(&m, b + "attn_k.bias", {kv_dim}, GgmlType::F32);
      AddTensor(&m, b + "attn_v.bias", {kv_dim}, GgmlType::F32);
    }
    AddTensor(&m, b + "attn_output.weight", {q_dim, embd}, GgmlType::F16);
    AddTensor(&m, b + "ffn_norm.weight", {embd}, GgmlType::F32);
    AddTensor(&m, b + "ffn_gate.weight", {embd, ff}, GgmlType::F16);
    AddTensor(&m, b + "ffn_up.weight", {embd, ff}, GgmlType::F16);
    AddTensor(&m, b + "ffn_down.weight", {ff, embd}, GgmlType::F16);
  }
  AddTensor(&m, "output_norm.weight", {embd}, GgmlType::F32);
  if (!p.tied) AddTensor(&m, "output.weight", {embd, vocab}, GgmlType::F16);
  return m;
}

}  // namespace qforge

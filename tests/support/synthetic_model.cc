// Deterministic synthetic weights: per tensor a SplitMix64 stream seeded by (seed, tensor index), mapped
// to N(0, 1/sqrt(fan_in)) by Box-Muller, with 1 in 1000 values scaled 8x (outliers, as in real LLM weights).
#include "synthetic_model.h"

#include <cmath>
#include <fmt/format.h>

namespace qforge::testing {
namespace {

uint64_t SplitMix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double Uniform(uint64_t& s) { return (static_cast<double>(SplitMix(s) >> 11) + 0.5) / 9007199254740992.0; }

SourceTensor MakeTensor(std::string name, std::vector<uint64_t> ne, uint64_t seed, bool norm) {
  SourceTensor t;
  t.name = std::move(name);
  t.ne = std::move(ne);
  t.type = GgmlType::F32;
  const double sigma = 1.0 / std::sqrt(static_cast<double>(t.ne[0]));
  t.read_f32 = [n = t.numel(), seed, norm, sigma](float* dst) {
    uint64_t s = seed;
    for (uint64_t i = 0; i < n; ++i) {
      double u1 = Uniform(s), u2 = Uniform(s);
      double g = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
      if (norm) {
        dst[i] = static_cast<float>(1.0 + 0.1 * g);
      } else {
        double scale = (SplitMix(s) % 1000 == 0) ? 8.0 : 1.0;
        dst[i] = static_cast<float>(g * sigma * scale);
      }
    }
    return Status::Ok();
  };
  return t;
}

void AddVocabulary(int n_vocab, Metadata* m) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  tokens.push_back("<unk>"), types.push_back(2);
  tokens.push_back("<s>"), types.push_back(3);
  tokens.push_back("</s>"), types.push_back(3);
  for (int b = 0; b < 256 && static_cast<int>(tokens.size()) < n_vocab; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(6);
  }
  for (int i = static_cast<int>(tokens.size()); i < n_vocab; ++i) {
    tokens.push_back(fmt::format("\xe2\x96\x81tok{}", i));
    types.push_back(1);
  }
  for (int i = 0; i < n_vocab; ++i) scores.push_back(-static_cast<float>(i));
  m->Set("tokenizer.ggml.model", MetaValue::String("llama"));
  m->Set("tokenizer.ggml.tokens", MetaValue::StringArray(tokens));
  m->Set("tokenizer.ggml.scores", MetaValue::F32Array(scores));
  m->Set("tokenizer.ggml.token_type", MetaValue::I32Array(types));
  m->Set("tokenizer.ggml.bos_token_id", MetaValue::U32(1));
  m->Set("tokenizer.ggml.eos_token_id", MetaValue::U32(2));
  m->Set("tokenizer.ggml.unknown_token_id", MetaValue::U32(0));
}

}  // namespace

SourceModel MakeSyntheticLlama(const SyntheticSpec& spec) {
  SourceModel m;
  m.path = "synthetic";
  m.format = "synthetic";
  const uint64_t e = spec.n_embd, f = spec.n_ff, v = spec.n_vocab;
  const uint64_t kv = e / spec.n_head * spec.n_head_kv;
  Metadata& md = m.metadata;
  md.Set("general.architecture", MetaValue::String("llama"));
  md.Set("general.name", MetaValue::String("qforge-synthetic"));
  md.Set("llama.context_length", MetaValue::U32(2048));
  md.Set("llama.embedding_length", MetaValue::U32(spec.n_embd));
  md.Set("llama.feed_forward_length", MetaValue::U32(spec.n_ff));
  md.Set("llama.block_count", MetaValue::U32(spec.n_layer));
  md.Set("llama.attention.head_count", MetaValue::U32(spec.n_head));
  md.Set("llama.attention.head_count_kv", MetaValue::U32(spec.n_head_kv));
  md.Set("llama.rope.dimension_count", MetaValue::U32(spec.n_embd / spec.n_head));
  md.Set("llama.attention.layer_norm_rms_epsilon", MetaValue::F32(1e-5f));
  md.Set("llama.rope.freq_base", MetaValue::F32(10000.0f));
  AddVocabulary(spec.n_vocab, &md);

  uint64_t k = spec.seed * 1000003ull;
  auto add = [&](std::string name, std::vector<uint64_t> ne, bool norm = false) {
    m.tensors.push_back(MakeTensor(std::move(name), std::move(ne), ++k, norm));
  };
  add("token_embd.weight", {e, v});
  add("output_norm.weight", {e}, true);
  if (!spec.tied_output) add("output.weight", {e, v});
  for (int l = 0; l < spec.n_layer; ++l) {
    const std::string b = fmt::format("blk.{}.", l);
    add(b + "attn_norm.weight", {e}, true);
    add(b + "attn_q.weight", {e, e});
    add(b + "attn_k.weight", {e, kv});
    add(b + "attn_v.weight", {e, kv});
    add(b + "attn_output.weight", {e, e});
    add(b + "ffn_norm.weight", {e}, true);
    add(b + "ffn_gate.weight", {e, f});
    add(b + "ffn_down.weight", {f, e});
    add(b + "ffn_up.weight", {e, f});
  }
  return m;
}

}  // namespace qforge::testing

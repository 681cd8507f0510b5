// Builds a Hugging Face LlamaForCausalLM folder from a llama2.c checkpoint (stories260K), the way
// transformers' convert_llama_weights_to_hf.py would: q/k rows permuted from Meta's interleaved RoPE layout
// to HF's rotate-half layout, tensors in HF names, sharded into two safetensors files with an index.
// Usage: make_hf_fixture STORIES260K_BIN TOK512_MODEL OUT_DIR [--dtype f32|bf16]
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qforge/core/atomic_file.h"
#include "qforge/core/fp16.h"
#include "qforge/core/mapped_file.h"
#include "qforge/formats/hf_model.h"
#include "qforge/formats/safetensors.h"

namespace qforge {
namespace {

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

Status WriteText(const std::string& path, const std::string& text) {
  QF_ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path));
  QF_RETURN_IF_ERROR(f.Write(text.data(), text.size()));
  return f.Commit();
}

Status Run(const std::string& bin, const std::string& tok, const std::string& out, bool bf16) {
  QF_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> f, MappedFile::Open(bin));
  if (f->size() < 28) return Status::Error("too small for a llama2.c header", bin);
  int32_t h[7];
  std::memcpy(h, f->data(), 28);
  const int64_t dim = h[0], hidden = h[1], n_layers = h[2], n_heads = h[3], n_kv = h[4], vocab = h[5], seq = h[6];
  if (dim <= 0 || hidden <= 0 || n_layers <= 0 || n_heads <= 0 || n_kv <= 0 || vocab <= 0 || seq <= 0 ||
      dim % n_heads != 0)
    return Status::Error("unsupported llama2.c header (a negative vocab_size, i.e. an untied classifier, is not handled)", bin);
  const int64_t kv_dim = n_kv * dim / n_heads;
  uint64_t pos = 28;
  auto take = [&](int64_t n, std::vector<float>* v) -> Status {
    if (f->size() < pos + uint64_t(n) * 4) return Status::Error("truncated checkpoint", bin, int64_t(pos));
    v->resize(n);
    std::memcpy(v->data(), f->data() + pos, n * 4);
    pos += n * 4;
    return Status::Ok();
  };
  std::vector<float> emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final;
  QF_RETURN_IF_ERROR(take(vocab * dim, &emb));
  QF_RETURN_IF_ERROR(take(n_layers * dim, &rms_att));
  QF_RETURN_IF_ERROR(take(n_layers * dim * dim, &wq));
  QF_RETURN_IF_ERROR(take(n_layers * kv_dim * dim, &wk));
  QF_RETURN_IF_ERROR(take(n_layers * kv_dim * dim, &wv));
  QF_RETURN_IF_ERROR(take(n_layers * dim * dim, &wo));
  QF_RETURN_IF_ERROR(take(n_layers * dim, &rms_ffn));
  QF_RETURN_IF_ERROR(take(n_layers * hidden * dim, &w1));
  QF_RETURN_IF_ERROR(take(n_layers * dim * hidden, &w2));
  QF_RETURN_IF_ERROR(take(n_layers * hidden * dim, &w3));
  QF_RETURN_IF_ERROR(take(dim, &rms_final));

  auto slice = [](const std::vector<float>& all, int64_t l, int64_t n) {
    return std::vector<float>(all.begin() + l * n, all.begin() + (l + 1) * n);
  };
  auto to_hf = [](std::vector<float> w, int64_t rows, int64_t cols, int64_t heads) {
    std::vector<float> out(w.size());
    PermuteQkRowsGgufToHf(w.data(), out.data(), rows, cols, heads);
    return out;
  };
  std::vector<std::vector<Tensor>> shards(2);
  shards[0].push_back({"model.embed_tokens.weight", {vocab, dim}, emb});
  for (int64_t l = 0; l < n_layers; ++l) {
    auto& s = shards[l < (n_layers + 1) / 2 ? 0 : 1];
    std::string p = "model.layers." + std::to_string(l) + ".";
    s.push_back({p + "input_layernorm.weight", {dim}, slice(rms_att, l, dim)});
    s.push_back({p + "self_attn.q_proj.weight", {dim, dim}, to_hf(slice(wq, l, dim * dim), dim, dim, n_heads)});
    s.push_back({p + "self_attn.k_proj.weight", {kv_dim, dim}, to_hf(slice(wk, l, kv_dim * dim), kv_dim, dim, n_kv)});
    s.push_back({p + "self_attn.v_proj.weight", {kv_dim, dim}, slice(wv, l, kv_dim * dim)});
    s.push_back({p + "self_attn.o_proj.weight", {dim, dim}, slice(wo, l, dim * dim)});
    s.push_back({p + "post_attention_layernorm.weight", {dim}, slice(rms_ffn, l, dim)});
    s.push_back({p + "mlp.gate_proj.weight", {hidden, dim}, slice(w1, l, hidden * dim)});
    s.push_back({p + "mlp.down_proj.weight", {dim, hidden}, slice(w2, l, dim * hidden)});
    s.push_back({p + "mlp.up_proj.weight", {hidden, dim}, slice(w3, l, hidden * dim)});
  }
  shards[1].push_back({"model.norm.weight", {dim}, rms_final});

  std::filesystem::create_directories(out);
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    std::string file = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
    std::vector<std::vector<uint8_t>> bytes;
    std::vector<SafetensorsTensorOut> outs;
    bytes.reserve(shards[s].size());
    for (const auto& t : shards[s]) {
      std::vector<uint8_t> b(t.values.size() * (bf16 ? 2 : 4));
      if (bf16) {
        std::vector<uint16_t> hv(t.values.size());
        F32ToBF16Row(t.values.data(), hv.data(), hv.size());
        std::memcpy(b.data(), hv.data(), b.size());
      } else {
        std::memcpy(b.data(), t.values.data(), b.size());
      }
      total += b.size();
      bytes.push_back(std::move(b));
      outs.push_back({t.name, bf16 ? DType::kBF16 : DType::kF32, t.shape, bytes.back()});
      weight_map[t.name] = file;
    }
    QF_RETURN_IF_ERROR(WriteSafetensors(out + "/" + file, outs, {{"format", "pt"}}));
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  QF_RETURN_IF_ERROR(WriteText(out + "/model.safetensors.index.json", index.dump(2) + "\n"));

  nlohmann::ordered_json config = {
      {"architectures", {"LlamaForCausalLM"}}, {"attention_bias", false}, {"attention_dropout", 0.0},
      {"bos_token_id", 1}, {"eos_token_id", 2}, {"hidden_act", "silu"}, {"hidden_size", dim},
      {"initializer_range", 0.02}, {"intermediate_size", hidden}, {"max_position_embeddings", seq},
      {"mlp_bias", false}, {"model_type", "llama"}, {"num_attention_heads", n_heads},
      {"num_hidden_layers", n_layers}, {"num_key_value_heads", n_kv}, {"pretraining_tp", 1},
      {"rms_norm_eps", 1e-05}, {"rope_scaling", nullptr}, {"rope_theta", 10000.0},
      {"tie_word_embeddings", true}, {"torch_dtype", bf16 ? "bfloat16" : "float32"},
      {"transformers_version", "4.44.0"}, {"use_cache", true}, {"vocab_size", vocab}};
  QF_RETURN_IF_ERROR(WriteText(out + "/config.json", config.dump(2) + "\n"));
  nlohmann::ordered_json gen = {{"_from_model_config", true}, {"bos_token_id", 1}, {"eos_token_id", 2},
                                {"transformers_version", "4.44.0"}};
  QF_RETURN_IF_ERROR(WriteText(out + "/generation_config.json", gen.dump(2) + "\n"));
  nlohmann::ordered_json tok_config = {
      {"add_bos_token", true}, {"add_eos_token", false}, {"bos_token", "<s>"},
      {"clean_up_tokenization_spaces", false}, {"eos_token", "</s>"}, {"legacy", true},
      {"model_max_length", seq}, {"pad_token", nullptr}, {"sp_model_kwargs", nlohmann::json::object()},
      {"tokenizer_class", "LlamaTokenizer"}, {"unk_token", "<unk>"}, {"use_default_system_prompt", false}};
  QF_RETURN_IF_ERROR(WriteText(out + "/tokenizer_config.json", tok_config.dump(2) + "\n"));
  nlohmann::ordered_json special = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}};
  QF_RETURN_IF_ERROR(WriteText(out + "/special_tokens_map.json", special.dump(2) + "\n"));
  QF_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> tm, MappedFile::Open(tok));
  QF_ASSIGN_OR_RETURN(AtomicFile tf, AtomicFile::Create(out + "/tokenizer.model"));
  QF_RETURN_IF_ERROR(tf.Write(tm->bytes()));
  return tf.Commit();
}

}  // namespace
}  // namespace qforge

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  bool bf16 = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--dtype" && i + 1 < args.size()) {
      if (args[i + 1] != "bf16" && args[i + 1] != "f32") break;
      bf16 = args[i + 1] == "bf16";
      args.erase(args.begin() + i, args.begin() + i + 2);
      --i;
    }
  }
  if (args.size() != 3) {
    std::fprintf(stderr, "usage: make_hf_fixture STORIES260K_BIN TOK512_MODEL OUT_DIR [--dtype f32|bf16]\n");
    return 2;
  }
  qforge::Status s = qforge::Run(args[0], args[1], args[2], bf16);
  if (!s.ok()) {
    std::fprintf(stderr, "make_hf_fixture: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

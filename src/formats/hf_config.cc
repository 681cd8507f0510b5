// config.json of a Hugging Face Llama / Mistral / Qwen2 checkpoint -> HfConfig -> GGUF <arch>.* metadata
// with the key names and value types llama.cpp's convert_hf_to_gguf.py writes. Input is untrusted: every
// field is type-checked and bounded, and JSON errors become a Status (never an exception).
#include <cmath>

#include <nlohmann/json.hpp>

#include "qforge/formats/hf_model.h"
#include "strict_json.h"

namespace qforge {
namespace {

using nlohmann::json;

constexpr const char* kSupported = "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM";
constexpr int64_t kMaxDim = int64_t{1} << 31;  // GGUF stores these as u32

// Reads an optional integer field; error if present with another type or outside [lo, kMaxDim).
Status GetInt(const json& j, const char* key, const std::string& file, int64_t lo, std::optional<int64_t>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() >= uint64_t(kMaxDim)))
    return Status::Error(std::string("\"") + key + "\" must be an integer below 2^31", file);
  int64_t v = it->get<int64_t>();
  if (v < lo || v >= kMaxDim)
    return Status::Error(std::string("\"") + key + "\" is " + std::to_string(v) + ", must be at least " +
                         std::to_string(lo), file);
  *out = v;
  return Status::Ok();
}

Status Require(const json& j, const char* key, const std::string& file, int64_t* out) {
  std::optional<int64_t> v;
  QF_RETURN_IF_ERROR(GetInt(j, key, file, 1, &v));
  if (!v) return Status::Error(std::string("missing \"") + key + "\"", file);
  *out = *v;
  return Status::Ok();
}

Status GetFloat(const json& j, const char* key, const std::string& file, double* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() <= 0)
    return Status::Error(std::string("\"") + key + "\" must be a positive number", file);
  *out = it->get<double>();
  return Status::Ok();
}

// "bos_token_id": 1 or [128001, 128009] (the first is the one GGUF can hold).
Status GetTokenId(const json& j, const char* key, const std::string& file, std::optional<int64_t>* out) {
  auto it = j.find(key);
  if (it != j.end() && it->is_array()) {
    if (it->empty()) return Status::Ok();
    json first = json::object({{key, (*it)[0]}});
    return GetInt(first, key, file, 0, out);
  }
  return GetInt(j, key, file, 0, out);
}

Status ParseRopeScaling(const json& j, const std::string& file, HfConfig* c) {
  auto it = j.find("rope_scaling");
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) return Status::Error("\"rope_scaling\" is not an object", file);
  auto t = it->find("rope_type");
  if (t == it->end()) t = it->find("type");
  if (t == it->end() || !t->is_string()) return Status::Error("\"rope_scaling\" has no \"rope_type\"", file);
  std::string type = t->get<std::string>();
  if (type == "default") return Status::Ok();
  if (type != "linear" && type != "llama3")
    return Status::Error("unsupported rope_scaling type '" + type + "' (supported: linear, llama3)", file);
  c->rope_scaling_type = type;
  QF_RETURN_IF_ERROR(GetFloat(*it, "factor", file, &c->rope_factor));
  QF_RETURN_IF_ERROR(GetFloat(*it, "low_freq_factor", file, &c->rope_low_freq_factor));
  QF_RETURN_IF_ERROR(GetFloat(*it, "high_freq_factor", file, &c->rope_high_freq_factor));
  std::optional<int64_t> orig;
  QF_RETURN_IF_ERROR(GetInt(*it, "original_max_position_embeddings", file, 1, &orig));
  if (orig) c->rope_original_ctx = *orig;
  if (type == "llama3" && c->rope_high_freq_factor == c->rope_low_freq_factor)
    return Status::Error("rope_scaling: high_freq_factor equals low_freq_factor", file);
  return Status::Ok();
}

}  // namespace

StatusOr<HfConfig> ParseHfConfig(std::string_view json_text, const std::string& file) {
  QF_ASSIGN_OR_RETURN(json j, formats_internal::ParseStrictJson(json_text, file));
  if (!j.is_object()) return Status::Error("config is not a JSON object", file);
  HfConfig c;
  auto arch = j.find("architectures");
  if (arch == j.end() || !arch->is_array() || arch->empty() || !(*arch)[0].is_string())
    return Status::Error("missing \"architectures\" (supported: " + std::string(kSupported) + ")", file);
  c.architecture = (*arch)[0].get<std::string>();
  if (c.architecture == "LlamaForCausalLM" || c.architecture == "MistralForCausalLM") {
    c.gguf_arch = "llama";
  } else if (c.architecture == "Qwen2ForCausalLM") {
    c.gguf_arch = "qwen2";
  } else {
    return Status::Error("unsupported architecture '" + c.architecture + "' (supported: " + kSupported + ")", file);
  }
  QF_RETURN_IF_ERROR(Require(j, "max_position_embeddings", file, &c.n_ctx));
  QF_RETURN_IF_ERROR(Require(j, "hidden_size", file, &c.n_embd));
  QF_RETURN_IF_ERROR(Require(j, "intermediate_size", file, &c.n_ff));
  QF_RETURN_IF_ERROR(Require(j, "num_hidden_layers", file, &c.n_layer));
  QF_RETURN_IF_ERROR(Require(j, "num_attention_heads", file, &c.n_head));
  QF_RETURN_IF_ERROR(Require(j, "vocab_size", file, &c.n_vocab));
  std::optional<int64_t> kv, hd;
  QF_RETURN_IF_ERROR(GetInt(j, "num_key_value_heads", file, 1, &kv));
  QF_RETURN_IF_ERROR(GetInt(j, "head_dim", file, 1, &hd));
  c.n_head_kv = kv.value_or(c.n_head);
  if (c.n_head % c.n_head_kv != 0)
    return Status::Error("num_attention_heads " + std::to_string(c.n_head) + " is not a multiple of num_key_value_heads " +
                         std::to_string(c.n_head_kv), file);
  if (hd) {
    c.head_dim = *hd;
    c.explicit_head_dim = c.head_dim * c.n_head != c.n_embd;
  } else {
    if (c.n_embd % c.n_head != 0)
      return Status::Error("hidden_size " + std::to_string(c.n_embd) + " is not a multiple of num_attention_heads " +
                           std::to_string(c.n_head), file);
    c.head_dim = c.n_embd / c.n_head;
  }
  if (c.head_dim % 2 != 0) return Status::Error("head dimension " + std::to_string(c.head_dim) + " is odd (RoPE needs pairs)", file);
  QF_RETURN_IF_ERROR(GetFloat(j, "rope_theta", file, &c.rope_theta));
  QF_RETURN_IF_ERROR(GetFloat(j, "rms_norm_eps", file, &c.rms_eps));
  auto tie = j.find("tie_word_embeddings");
  if (tie != j.end() && !tie->is_null()) {
    if (!tie->is_boolean()) return Status::Error("\"tie_word_embeddings\" must be true or false", file);
    c.tie_word_embeddings = tie->get<bool>();
  }
  QF_RETURN_IF_ERROR(GetTokenId(j, "bos_token_id", file, &c.bos_id));
  QF_RETURN_IF_ERROR(GetTokenId(j, "eos_token_id", file, &c.eos_id));
  QF_RETURN_IF_ERROR(GetTokenId(j, "pad_token_id", file, &c.pad_id));
  QF_RETURN_IF_ERROR(ParseRopeScaling(j, file, &c));
  return c;
}

void HfConfigToMetadata(const HfConfig& c, Metadata* m) {
  const std::string a = c.gguf_arch;
  auto u32 = [](int64_t v) { return MetaValue::U32(static_cast<uint32_t>(v)); };
  m->Set("general.architecture", MetaValue::String(a));
  m->Set(a + ".vocab_size", u32(c.n_vocab));
  m->Set(a + ".context_length", u32(c.n_ctx));
  m->Set(a + ".embedding_length", u32(c.n_embd));
  m->Set(a + ".feed_forward_length", u32(c.n_ff));
  m->Set(a + ".block_count", u32(c.n_layer));
  m->Set(a + ".attention.head_count", u32(c.n_head));
  m->Set(a + ".attention.head_count_kv", u32(c.n_head_kv));
  m->Set(a + ".rope.freq_base", MetaValue::F32(static_cast<float>(c.rope_theta)));
  m->Set(a + ".attention.layer_norm_rms_epsilon", MetaValue::F32(static_cast<float>(c.rms_eps)));
  m->Set(a + ".rope.dimension_count", u32(c.head_dim));
  if (c.explicit_head_dim) {
    m->Set(a + ".attention.key_length", u32(c.head_dim));
    m->Set(a + ".attention.value_length", u32(c.head_dim));
  }
  if (c.rope_scaling_type == "linear") {
    m->Set(a + ".rope.scaling.type", MetaValue::String("linear"));
    m->Set(a + ".rope.scaling.factor", MetaValue::F32(static_cast<float>(c.rope_factor)));
  }
}

std::vector<float> Llama3RopeFactors(const HfConfig& c) {
  // Same float32 frequencies and double-precision wavelength tests as the Python converter.
  const double pi = 3.14159265358979323846;
  const double low_wavelen = c.rope_original_ctx / c.rope_low_freq_factor;
  const double high_wavelen = c.rope_original_ctx / c.rope_high_freq_factor;
  std::vector<float> out;
  for (int64_t i = 0; i < c.head_dim; i += 2) {
    float freq = 1.0f / std::pow(static_cast<float>(c.rope_theta), static_cast<float>(i) / c.head_dim);
    double wavelen = 2 * pi / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(static_cast<float>(c.rope_factor));
    } else {
      double smooth = (c.rope_original_ctx / wavelen - c.rope_low_freq_factor) /
                      (c.rope_high_freq_factor - c.rope_low_freq_factor);
      out.push_back(static_cast<float>(1 / ((1 - smooth) / c.rope_factor + smooth)));
    }
  }
  return out;
}

}  // namespace qforge

// A Hugging Face model directory (config.json + safetensors + tokenizer.json / tokenizer.model) read as
// a GGUF "llama" SourceModel: hyper-parameters into llama.* keys, tokenizer into tokenizer.ggml.*,
// tensor names mapped to GGUF names, and Q/K rows permuted into llama.cpp's RoPE layout.
// Supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/source_model.h"

namespace qforge {

StatusOr<SourceModel> OpenHfSource(const std::string& dir);

// config.json, validated. gguf_arch is "llama" (Llama, Mistral) or "qwen2".
struct HfConfig {
  std::string architecture;  // "LlamaForCausalLM", ...
  std::string gguf_arch;
  int64_t n_ctx = 0, n_embd = 0, n_ff = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_vocab = 0;
  bool explicit_head_dim = false;  // config.json had "head_dim" different from n_embd / n_head
  double rope_theta = 10000.0;
  double rms_eps = 1e-6;
  bool tie_word_embeddings = false;
  std::optional<int64_t> bos_id, eos_id, pad_id;  // *_token_id (the first one when a list)
  // rope_scaling: "" (none), "linear" (factor) or "llama3" (Llama 3.1+: per-frequency factors, written as
  // the rope_freqs.weight tensor as llama.cpp's converter does). Other types are rejected.
  std::string rope_scaling_type;
  double rope_factor = 1.0, rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0;
  int64_t rope_original_ctx = 8192;
  // llama.cpp's "llama" arch applies RoPE to interleaved pairs, HF to halves: Q/K rows must be permuted.
  bool permute_qk() const { return gguf_arch == "llama"; }
};
StatusOr<HfConfig> ParseHfConfig(std::string_view json_text, const std::string& file);
// Writes general.architecture and the <arch>.* hyper-parameters (general.name is the caller's).
void HfConfigToMetadata(const HfConfig& config, Metadata* metadata);
// The rope_freqs.weight values (head_dim / 2 factors) for rope_scaling_type "llama3"
// (convert_hf_to_gguf.py LlamaModel.generate_extra_tensors).
std::vector<float> Llama3RopeFactors(const HfConfig& config);

// Tokenizer: tokenizer.model (SentencePiece, preferred as llama.cpp's converter does) or tokenizer.json,
// plus special token ids from tokenizer_config.json / config.json. Writes tokenizer.ggml.*.
Status ReadHfTokenizer(const std::string& dir, const HfConfig& config, Metadata* metadata);
// tokenizer.json alone, from bytes (fuzzable). tokenizer_config_json may be empty.
Status ParseHfTokenizerJson(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                            const HfConfig& config, const std::string& file, Metadata* metadata);

// Maps "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight" etc.; nullopt if unknown.
std::optional<std::string> HfToGgufTensorName(const std::string& hf_name);

// Row permutation llama.cpp's "llama" architecture expects for HF q_proj/k_proj weights
// (convert_hf_to_gguf.py LlamaModel.permute): rows of each head go from rotate-half order
// [first half | second half] to interleaved pairs. `rows` x `cols` row-major float data.
void PermuteQkRowsHfToGguf(const float* src, float* dst, int64_t rows, int64_t cols, int64_t n_head);
// The inverse (Meta/llama2.c interleaved layout -> HF layout), as transformers' conversion script does.
void PermuteQkRowsGgufToHf(const float* src, float* dst, int64_t rows, int64_t cols, int64_t n_head);

}  // namespace qforge

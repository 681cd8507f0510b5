// A Hugging Face model directory (config.json + safetensors + tokenizer.json / tokenizer.model) read as
// a GGUF "llama" SourceModel: hyper-parameters into llama.* keys, tokenizer into tokenizer.ggml.*,
// tensor names mapped to GGUF names, and Q/K rows permuted into llama.cpp's RoPE layout.
// Supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/source_model.h"

namespace qforge {

StatusOr<SourceModel> OpenHfSource(const std::string& dir);

// Maps "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight" etc.; nullopt if unknown.
std::optional<std::string> HfToGgufTensorName(const std::string& hf_name);

// Row permutation llama.cpp's "llama" architecture expects for HF q_proj/k_proj weights
// (convert_hf_to_gguf.py LlamaModel.permute): rows of each head go from rotate-half order
// [first half | second half] to interleaved pairs. `rows` x `cols` row-major float data.
void PermuteQkRowsHfToGguf(const float* src, float* dst, int64_t rows, int64_t cols, int64_t n_head);
// The inverse (Meta/llama2.c interleaved layout -> HF layout), as transformers' conversion script does.
void PermuteQkRowsGgufToHf(const float* src, float* dst, int64_t rows, int64_t cols, int64_t n_head);

}  // namespace qforge

// llama2.c checkpoints (legacy version-0 layout: 7 int32 header, fp32 tensors; negative vocab_size =
// separate classifier) and llama2.c tokenizer.bin files, read as a GGUF "llama" SourceModel with a
// SentencePiece ("llama") vocabulary in tokenizer.ggml.* metadata.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "qforge/core/status.h"
#include "qforge/formats/source_model.h"

namespace qforge {

constexpr uint64_t kLlama2cHeaderBytes = 28;  // 7 x int32

struct Llama2cConfig {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  bool shared_classifier = true;  // vocab_size was positive

  int64_t head_size() const { return dim / n_heads; }
  int64_t kv_dim() const { return static_cast<int64_t>(n_kv_heads) * head_size(); }
};

// Decodes and validates the 28-byte header (every field > 0, dim % n_heads == 0, n_heads % n_kv_heads
// == 0, even head size). vocab_size is returned positive, with shared_classifier telling its sign.
StatusOr<Llama2cConfig> ParseLlama2cHeader(std::span<const uint8_t> bytes, const std::string& name);

// Bytes a checkpoint with this config occupies (header, weights, RoPE tables, optional classifier);
// error on overflow.
StatusOr<uint64_t> Llama2cExpectedBytes(const Llama2cConfig& config);

// Parses a whole checkpoint held in memory: tensors (GGUF names and order of llama.cpp's
// convert-llama2c-to-ggml) whose raw spans point into `bytes`, plus the llama.* / general.* metadata.
// No tokenizer keys and no keep_alive: the caller keeps `bytes` alive. Used by OpenLlama2cSource and
// the fuzzer.
StatusOr<SourceModel> ParseLlama2cCheckpoint(std::span<const uint8_t> bytes, const std::string& name);

// Parses a llama2.c vocabulary held in memory (int32 max_token_length, then per token: f32 score,
// int32 length, bytes) holding exactly expected_vocab tokens into tokenizer.ggml.* keys (model "llama",
// tokens, scores, token_type, unk/bos/eos ids). Pieces get their SentencePiece spelling back (' ' ->
// U+2581, "\n<s>\n" -> "<s>"); byte-fallback pieces "<0xNN>" are typed BYTE, vocabularies without
// them (BabyLlama) are accepted as they are.
Status ParseLlama2cTokenizer(std::span<const uint8_t> bytes, const std::string& name, int32_t expected_vocab,
                             Metadata* metadata);
Status ReadLlama2cTokenizer(const std::string& path, int32_t expected_vocab, Metadata* metadata);

// checkpoint: the .bin; tokenizer: the tokenizer.bin (empty = look for tokenizer.bin / tok<vocab>.bin
// next to the checkpoint). Errors name the file and the offending field.
StatusOr<SourceModel> OpenLlama2cSource(const std::string& checkpoint, const std::string& tokenizer = {});

}  // namespace qforge

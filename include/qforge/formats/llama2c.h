// llama2.c checkpoints (legacy version-0 layout: 7 int32 header, fp32 tensors; negative vocab_size =
// separate classifier) and llama2.c tokenizer.bin files, read as a GGUF "llama" SourceModel with a
// SentencePiece ("llama") vocabulary in tokenizer.ggml.* metadata.
#pragma once

#include <string>

#include "qforge/core/status.h"
#include "qforge/formats/source_model.h"

namespace qforge {

struct Llama2cConfig {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  bool shared_classifier = true;  // vocab_size was positive
};

// Parses a llama2.c vocabulary file into tokenizer.ggml.* keys (model "llama", tokens, scores,
// token_type, bos/eos/unk ids); byte-fallback pieces "<0xNN>" are typed BYTE, vocabularies without them
// (BabyLlama) are accepted as they are.
Status ReadLlama2cTokenizer(const std::string& path, int32_t expected_vocab, Metadata* metadata);

// checkpoint: the .bin; tokenizer: the tokenizer.bin (empty = look for tokenizer.bin / tok<vocab>.bin
// next to the checkpoint). Errors name the file and the offending field.
StatusOr<SourceModel> OpenLlama2cSource(const std::string& checkpoint, const std::string& tokenizer = {});

}  // namespace qforge

// A minimal reader of SentencePiece's ModelProto (tokenizer.model): the pieces (text, score, type) and the
// few trainer_spec / normalizer_spec fields a GGUF vocabulary needs. Hand-written protobuf wire-format
// parsing over untrusted bytes (no libprotobuf dependency); unknown fields are skipped.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qforge/core/status.h"

namespace qforge {

// sentencepiece_model.proto SentencePiece.Type; the numbers equal llama.cpp's token types.
enum class SpPieceType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct SpPiece {
  std::string piece;  // as stored, with U+2581 for spaces
  float score = 0;
  SpPieceType type = SpPieceType::kNormal;
};

struct SentencePieceModel {
  std::vector<SpPiece> pieces;
  // trainer_spec (defaults are the proto defaults)
  int32_t model_type = 1;  // 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR
  int32_t vocab_size = 8000;
  bool byte_fallback = false;
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  // normalizer_spec
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
};

StatusOr<SentencePieceModel> ParseSentencePieceModel(std::span<const uint8_t> bytes, const std::string& file);
StatusOr<SentencePieceModel> ReadSentencePieceModel(const std::string& path);

}  // namespace qforge

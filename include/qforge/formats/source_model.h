// What every reader produces: GGUF-named tensors plus GGUF metadata, whatever the source format
// (GGUF, llama2.c, Hugging Face directory, safetensors). Tensor data stays in the mapped source file
// and is produced one tensor at a time, so converting or quantizing streams with bounded memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/ggml_type.h"
#include "qforge/formats/metadata.h"

namespace qforge {

struct SourceTensor {
  std::string name;          // GGUF name, e.g. "blk.0.attn_q.weight"
  std::vector<uint64_t> ne;  // ggml order: ne[0] is the innermost (contiguous) dimension
  GgmlType type = GgmlType::F32;  // how the source stores it
  // Raw bytes in `type`, laid out exactly as a GGUF tensor would be; empty when the source needs a
  // transformation (e.g. the Q/K permutation of Hugging Face checkpoints).
  std::span<const uint8_t> raw;
  // Writes numel() floats in ne order into dst. Always set for F32/F16/BF16 sources (and any type
  // the quant registry can decode).
  std::function<Status(float* dst)> read_f32;

  uint64_t numel() const;
};

struct SourceModel {
  std::string path;    // what the user named
  std::string format;  // "gguf", "llama2c", "hf", "safetensors"
  Metadata metadata;
  std::vector<SourceTensor> tensors;
  std::vector<std::shared_ptr<const void>> keep_alive;  // mapped files the tensors point into

  const SourceTensor* FindTensor(std::string_view name) const;
};

}  // namespace qforge

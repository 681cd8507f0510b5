// convert: any SourceModel -> a GGUF file with 2-D weights stored as F32, F16 or BF16 (1-D norms and
// biases stay F32, as llama.cpp's converters do). Streams one tensor at a time through an atomic file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "qforge/core/status.h"
#include "qforge/formats/ggml_type.h"
#include "qforge/formats/source_model.h"

namespace qforge {

// Called after each tensor: (tensors done, total, bytes written so far, name of the tensor just written).
using ProgressFn = std::function<void(size_t done, size_t total, uint64_t bytes, const std::string& name)>;

struct ConvertOptions {
  GgmlType outtype = GgmlType::F16;  // F32, F16 or BF16
  ProgressFn progress;
};

struct ConvertReport {
  size_t tensors = 0;
  uint64_t file_bytes = 0;
  uint64_t params = 0;
};

// llama.cpp's LLAMA_FTYPE for a whole-model float type ("general.file_type").
uint32_t LlamaFtypeForFloat(GgmlType outtype);

StatusOr<ConvertReport> ConvertToGguf(const SourceModel& model, const std::string& out_path,
                                      const ConvertOptions& options);

// Produces a tensor's values as floats whatever its stored type (F32/F16/BF16 via read_f32, block types
// via the quant registry's decoder). dst must hold numel() floats.
Status ReadTensorF32(const SourceTensor& tensor, float* dst);

// Encodes floats into `type` with the quant registry; out must hold the tensor's byte size.
Status EncodeTensor(GgmlType type, const float* src, uint64_t numel, uint64_t row_len, uint8_t* out);

}  // namespace qforge

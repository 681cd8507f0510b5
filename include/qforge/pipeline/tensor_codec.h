// Turning a source tensor into floats and floats into any registry type, row by row, in parallel.
#pragma once

#include <cstdint>
#include <span>

#include "qforge/core/status.h"
#include "qforge/formats/ggml_type.h"
#include "qforge/formats/source_model.h"

namespace qforge {

// Produces a tensor's values as floats whatever its stored type (F32/F16/BF16 via read_f32, block types
// via the quant registry's decoder). dst must hold numel() floats.
Status ReadTensorF32(const SourceTensor& tensor, float* dst);

// Encodes numel floats (rows of row_len) into `type`; out must hold the encoded size. importance: nullptr
// or row_len per-column weights applied to every row. Rows are spread over `threads`; the bytes do not
// depend on the thread count.
Status EncodeTensor(GgmlType type, const float* src, uint64_t numel, uint64_t row_len, uint8_t* out,
                    const float* importance = nullptr, int threads = 1);

// Encodes a source tensor into `type` (out: exactly its encoded size). Rows are decoded from the mapped
// input by the worker that encodes them when the source is stored raw (F32/F16/BF16 or a registry type),
// so no whole-tensor float copy is made; otherwise through ReadTensorF32. check_finite: a NaN/Inf element
// is an error naming the tensor and the element's index (the first one in row-major order).
Status EncodeSourceTensor(const SourceTensor& tensor, GgmlType type, std::span<uint8_t> out,
                          const float* importance, int threads, bool check_finite);

}  // namespace qforge

// `qforge quantize IN OUT.safetensors --type int4-asym-g128`: the plain integer schemes of
// quant/int_schemes.h written to safetensors with their scales (layout in docs/formats.md, "Integer schemes").
// For every tensor of the source, in order: quantizable weights (PlanTensorTypes: 2-D+ weights, not norms)
// become <name>.qweight, <name>.scales and (asymmetric) <name>.zeros, shaped [rows, ...] with rows =
// ne[1]·ne[2]·..., cols = ne[0]; every other tensor is stored as F32 under its own (GGUF) name.
// __metadata__: format=qforge-int, qforge.scheme, qforge.source, general.architecture (when the source has it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/safetensors.h"
#include "qforge/formats/source_model.h"
#include "qforge/quant/int_schemes.h"

namespace qforge {

struct IntTensorReport {
  std::string name;
  bool quantized = false;
  uint64_t rows = 0, cols = 0;
  uint64_t bytes = 0;  // stored bytes: qweight + scales + zeros, or the F32 data
  double bits_per_weight() const { return rows * cols != 0 ? 8.0 * bytes / static_cast<double>(rows * cols) : 0.0; }
};

struct QuantizeIntReport {
  IntScheme scheme;
  std::vector<IntTensorReport> tensors;
  uint64_t params = 0;            // all tensor elements
  uint64_t quantized_params = 0;  // elements of the quantized weights
  uint64_t tensor_bytes = 0;      // all stored tensor data
  uint64_t quantized_bytes = 0;   // qweight + scales + zeros of the quantized weights
  uint64_t file_bytes = 0;        // the written file
  double bits_per_weight() const { return params ? 8.0 * tensor_bytes / static_cast<double>(params) : 0.0; }
  double quantized_bits_per_weight() const {
    return quantized_params ? 8.0 * quantized_bytes / static_cast<double>(quantized_params) : 0.0;
  }
};

struct QuantizeIntOptions {
  std::function<void(size_t done, size_t total, const std::string& name)> progress;  // optional
};

// Quantizes every quantizable tensor and writes `output` atomically through WriteSafetensors.
StatusOr<QuantizeIntReport> QuantizeToIntSafetensors(const SourceModel& model, const IntScheme& scheme,
                                                     const std::string& output,
                                                     const QuantizeIntOptions& options = {});

// Reads back one tensor of a qforge-int file as floats (row-major, ne order): a quantized weight is
// given by its base name (without ".qweight") and dequantized after checking dtypes and shapes; any other
// name must be an F32 tensor. rows/cols (optional) receive the 2-D shape.
StatusOr<std::vector<float>> ReadIntSafetensorsTensor(const SafetensorsFile& file, const std::string& name,
                                                      uint64_t* rows = nullptr, uint64_t* cols = nullptr);

}  // namespace qforge

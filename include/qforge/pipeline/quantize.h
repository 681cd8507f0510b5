// quantize_model: the one place that wires read -> plan -> encode -> write. A SourceModel and a Policy go
// in; a GGUF file comes out through an atomic file, one tensor in memory at a time. `convert` is the same
// pipeline with a float policy (F32/F16/BF16).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "qforge/algo/policy.h"
#include "qforge/core/status.h"
#include "qforge/formats/source_model.h"

namespace qforge {

// Called after each tensor: (tensors done, total, name of the tensor just written).
using ProgressFn = std::function<void(size_t done, size_t total, const std::string& name)>;

struct QuantizeOptions {
  int threads = 1;
  ProgressFn progress;
};

struct QuantizeReport {
  std::vector<TensorChoice> plan;
  uint64_t params = 0;          // elements of all tensors
  uint64_t tensor_bytes = 0;    // bytes of all tensor data as stored
  uint64_t file_bytes = 0;
  size_t fallbacks = 0;
  double bits_per_weight() const { return params ? 8.0 * tensor_bytes / static_cast<double>(params) : 0.0; }
};

// The plan and its sizes, without reading any tensor data (for --dry-run).
StatusOr<QuantizeReport> PlanQuantization(const SourceModel& model, const Policy& policy);

StatusOr<QuantizeReport> QuantizeToGguf(const SourceModel& model, const Policy& policy, const std::string& out_path,
                                        const QuantizeOptions& options);

}  // namespace qforge

// quantize_model: the one place that wires read -> plan -> encode -> write. A SourceModel and a Policy go
// in; a GGUF file comes out through an atomic file, one tensor in memory at a time. `convert` is the same
// pipeline with a float policy (F32/F16/BF16).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "qforge/algo/policy.h"
#include "qforge/core/status.h"
#include "qforge/formats/source_model.h"

namespace qforge {

// Called after each tensor: (tensors done, total, name of the tensor just written).
using ProgressFn = std::function<void(size_t done, size_t total, const std::string& name)>;

// Per-column importance (an importance matrix: Σx² of each input column over calibration text) by GGUF
// tensor name. A weight of shape [rows, cols] uses a vector of `cols` entries (ne[0]).
using ImportanceMap = std::map<std::string, std::vector<float>>;

// A calibrated method (GPTQ, AWQ, ...) that encodes some tensors itself. QuantizeToGguf calls it once per
// tensor (norms and F32 copies included), in file order, before the registry encoder; it returns true when it filled `out` (exactly
// GgufTensorBytes(type, tensor.ne) bytes) and false to leave the tensor to the registry encoder.
class TensorEncoder {
 public:
  virtual ~TensorEncoder() = default;
  virtual StatusOr<bool> Encode(const SourceTensor& tensor, GgmlType type, std::span<uint8_t> out) = 0;
};

struct QuantizeOptions {
  int threads = 1;
  ProgressFn progress;
  const ImportanceMap* importance = nullptr;  // optional: weights the encoders' error per column
  TensorEncoder* encoder = nullptr;           // optional: a calibrated method
  std::vector<std::pair<std::string, MetaValue>> extra_metadata;  // written to the output's key/value section
  // NaN/Inf in a weight that gets encoded is an error naming the tensor and element index, unless allowed
  // (a non-finite value poisons every block scale it touches, so the output would be silently broken).
  bool allow_nonfinite = false;
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

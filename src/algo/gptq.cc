// GPTQ into GGUF block types (include/qforge/algo/gptq.h). Implementation in progress.
#include "qforge/algo/gptq.h"

#include <string>

namespace qforge {

bool GptqSupportsType(GgmlType type) { return false; }

Status GptqQuantize(std::string_view name, GgmlType type, const float* W, int64_t rows, int64_t cols,
                    const double* H, std::span<uint8_t> out, const GptqOptions& options) {
  return Status::Error("tensor " + std::string(name) + ": GPTQ is not implemented yet");
}

}  // namespace qforge

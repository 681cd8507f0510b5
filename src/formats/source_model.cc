// Small helpers of SourceModel.
#include "qforge/formats/source_model.h"

namespace qforge {

uint64_t SourceTensor::numel() const {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;  // readers validated the product against overflow
  return n;
}

const SourceTensor* SourceModel::FindTensor(std::string_view name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace qforge

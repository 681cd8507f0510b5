// Placeholder: this family's rows are not implemented yet.
#include "qforge/quant/registry.h"

namespace qforge {
std::span<const QuantType> LegacyQuantTypes() { return {}; }
}  // namespace qforge

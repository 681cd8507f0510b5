// Joins the per-family rows into the one registry table (built once, immutable afterwards).
#include "qforge/quant/registry.h"

#include <vector>

namespace qforge {
namespace {

const std::vector<QuantType>& Table() {
  static const std::vector<QuantType> table = [] {
    std::vector<QuantType> t;
    for (auto family : {FloatQuantTypes(), LegacyQuantTypes(), KQuantTypes(), Iq4QuantTypes()})
      t.insert(t.end(), family.begin(), family.end());
    return t;
  }();
  return table;
}

}  // namespace

const QuantType* FindQuantType(GgmlType type) {
  for (const auto& q : Table())
    if (q.type == type) return &q;
  return nullptr;
}

std::span<const QuantType> AllQuantTypes() { return Table(); }

}  // namespace qforge

// The k-quant family's rows of the type registry: Q2_K … Q6_K (256-element super-blocks). Layouts are in
// include/qforge/quant/k_blocks.h, packing and decoding in k_quants_decode.cc, the search in
// k_quants_encode.cc.
#include "k_quants_internal.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {
using namespace kquant;
constexpr QuantType kRows[] = {
    {GgmlType::Q2_K, EncodeRowQ2K, DecodeRowQ2K}, {GgmlType::Q3_K, EncodeRowQ3K, DecodeRowQ3K},
    {GgmlType::Q4_K, EncodeRowQ4K, DecodeRowQ4K}, {GgmlType::Q5_K, EncodeRowQ5K, DecodeRowQ5K},
    {GgmlType::Q6_K, EncodeRowQ6K, DecodeRowQ6K},
};
}  // namespace

std::span<const QuantType> KQuantTypes() { return kRows; }
}  // namespace qforge

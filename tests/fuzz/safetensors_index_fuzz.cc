// libFuzzer target for model.safetensors.index.json: ParseSafetensorsIndex on arbitrary bytes must return a
// Status or a weight_map whose every shard name stays inside the model folder; never crash or throw.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "qforge/formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto map = qforge::ParseSafetensorsIndex(text, "model.safetensors.index.json");
  if (!map.ok()) return 0;
  if (map->empty()) std::abort();  // the parser promises at least one tensor
  for (const auto& [tensor, shard] : *map) {
    // An accepted shard name is relative and has no ".." component (it is joined to the model folder).
    if (shard.empty() || shard[0] == '/') std::abort();
    for (size_t p = 0; (p = shard.find("..", p)) != std::string::npos; p += 2) {
      const bool starts = p == 0 || shard[p - 1] == '/';
      const bool ends = p + 2 == shard.size() || shard[p + 2] == '/';
      if (starts && ends) std::abort();
    }
  }
  return 0;
}

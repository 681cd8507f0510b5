// JSON from model folders (safetensors headers, index files, config.json, tokenizer.json) parsed without
// letting an exception escape and without nlohmann's silent "last duplicate key wins": a file with two
// entries for one tensor, config field or token is ambiguous, so it is rejected with the key named.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "qforge/core/status.h"

namespace qforge::formats_internal {

// `base_offset`: where `text` starts in `file`, so syntax errors carry a file offset.
StatusOr<nlohmann::json> ParseStrictJson(std::string_view text, const std::string& file, uint64_t base_offset = 0);

}  // namespace qforge::formats_internal

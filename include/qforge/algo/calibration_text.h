// Which tokens a calibration pass (imatrix, GPTQ, AWQ, sensitivity) runs the model on. The user gives a
// text file; we tokenize it once (with BOS, as llama.cpp's imatrix does) and cut it into chunks of `ctx`
// tokens. When the text holds more than `tokens` tokens, the chunks are drawn evenly across the whole
// file rather than taken from its start, so a long file gives a mix of its parts (the "built-in mix").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/runtime/tokenizer.h"

namespace qforge {

struct CalibrationOptions {
  std::string file;      // --calib FILE (UTF-8 text)
  int64_t tokens = 16384;  // --calib-tokens N: total tokens to use (rounded down to whole chunks, >= 1 chunk)
  int ctx = 512;         // --calib-ctx N: tokens per chunk (each chunk starts with BOS when the vocab has one)
};

// Chunks of exactly options.ctx tokens. Errors name the file: unreadable, empty, fewer than ctx tokens,
// ctx < 2 or tokens < 1.
StatusOr<std::vector<std::vector<int32_t>>> LoadCalibrationChunks(const Tokenizer& tokenizer,
                                                                   const CalibrationOptions& options);

// The same from text already in memory (`source` names it in errors).
StatusOr<std::vector<std::vector<int32_t>>> CalibrationChunksFromText(const std::string& text,
                                                                       const std::string& source,
                                                                       const Tokenizer& tokenizer,
                                                                       const CalibrationOptions& options);

}  // namespace qforge

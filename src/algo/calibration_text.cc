#include "qforge/algo/calibration_text.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace qforge {

StatusOr<std::vector<std::vector<int32_t>>> CalibrationChunksFromText(const std::string& text,
                                                                       const std::string& source,
                                                                       const Tokenizer& tokenizer,
                                                                       const CalibrationOptions& options) {
  if (options.ctx < 2) return Status::Error(fmt::format("--calib-ctx must be at least 2, got {}", options.ctx));
  if (options.tokens < 1) return Status::Error(fmt::format("--calib-tokens must be positive, got {}", options.tokens));
  if (text.empty()) return Status::Error("calibration text is empty", source);
  const std::vector<int32_t> ids = tokenizer.Encode(text, /*add_bos=*/true);
  const size_t ctx = static_cast<size_t>(options.ctx);
  const size_t available = ids.size() / ctx;
  if (available == 0)
    return Status::Error(
        fmt::format("calibration text has {} tokens, fewer than one chunk of --calib-ctx {}", ids.size(), ctx), source);
  const size_t wanted = std::max<size_t>(1, static_cast<size_t>(options.tokens) / ctx);
  const size_t n = std::min(wanted, available);
  std::vector<std::vector<int32_t>> chunks;
  chunks.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // Chunk i of n taken from slot floor(i * available / n): evenly spread, deterministic, no overlap.
    const size_t slot = i * available / n;
    std::vector<int32_t> chunk(ids.begin() + static_cast<std::ptrdiff_t>(slot * ctx),
                               ids.begin() + static_cast<std::ptrdiff_t>((slot + 1) * ctx));
    if (tokenizer.bos() >= 0) chunk[0] = tokenizer.bos();
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

StatusOr<std::vector<std::vector<int32_t>>> LoadCalibrationChunks(const Tokenizer& tokenizer,
                                                                   const CalibrationOptions& options) {
  if (options.file.empty()) return Status::Error("a calibration text file is required (--calib FILE)");
  std::ifstream f(options.file, std::ios::binary);
  if (!f) return Status::Error("cannot open calibration text", options.file);
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::Error("cannot read calibration text", options.file);
  return CalibrationChunksFromText(ss.str(), options.file, tokenizer, options);
}

}  // namespace qforge

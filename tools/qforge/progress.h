// Progress on stderr for every long-running command: a one-line bar redrawn in place on a terminal, or
// plain lines (for logs and pipes), with throughput and ETA.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace qforge::cli {

enum class ProgressMode {
  kOff,
  kBar,    // "\r"-redrawn line, at most 10 times a second
  kLines,  // one plain line at most once a second, plus the last one
};

class ProgressBar {
 public:
  // unit: what `done`/`total` count. "B" (bytes) shows throughput in MB/s; any other unit shows
  // "<rate> <unit>/s"; empty shows no rate.
  ProgressBar(std::string label, uint64_t total, ProgressMode mode, std::string unit = {});
  // Compatibility form used by most commands: a bar when enabled, nothing otherwise.
  ProgressBar(std::string label, uint64_t total, bool enabled)
      : ProgressBar(std::move(label), total, enabled ? ProgressMode::kBar : ProgressMode::kOff) {}

  // done: units completed; note: short text shown after the bar (e.g. the tensor name).
  void Update(uint64_t done, const std::string& note = {});
  void Finish();

 private:
  std::string Rate(double elapsed, uint64_t done) const;
  void Draw(std::chrono::steady_clock::time_point now);

  std::string label_;
  uint64_t total_;
  ProgressMode mode_;
  std::string unit_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  uint64_t last_done_ = 0;
  std::string last_note_;
  bool drew_final_ = false;
};

bool StderrIsTerminal();

// kBar on a terminal, kLines otherwise (or kBar when the user forces the bar with --progress).
ProgressMode DefaultProgressMode(bool force_bar, bool quiet);

}  // namespace qforge::cli

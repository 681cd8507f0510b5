// A one-line progress bar with rate and ETA on stderr (only when stderr is a terminal, or when forced),
// shared by every long-running command.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace qforge::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total, bool enabled);
  // done: units completed; note: short text shown after the bar (e.g. the tensor name).
  void Update(uint64_t done, const std::string& note = {});
  void Finish();

 private:
  std::string label_;
  uint64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};

bool StderrIsTerminal();

}  // namespace qforge::cli

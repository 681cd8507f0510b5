// libFuzzer target for the imatrix parsers (GGUF imatrix and legacy .dat, chosen by the magic like
// ReadImatrix): any input must parse into entries whose shapes are consistent and whose values are finite
// and non-negative, or fail with a Status; never crash, hang or read out of bounds.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "qforge/formats/imatrix.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto im = qforge::ParseImatrix(std::span<const uint8_t>(data, size), "fuzz.imatrix");
  if (!im.ok()) return 0;
  // What the parser promises, checked on every accepted input: the importance map below divides by
  // counts and indexes sums by matrix, so a broken promise shows up as a sanitizer report or a trap.
  double total = 0;
  for (const auto& [name, e] : im->entries) {
    if (name.empty() || e.counts.empty() || e.sums.empty() || e.sums.size() % e.counts.size() != 0) __builtin_trap();
    for (float v : e.sums)
      if (!std::isfinite(v) || v < 0) __builtin_trap();
    for (int64_t c : e.counts)
      if (c < 0) __builtin_trap();
  }
  for (const auto& [name, mean] : qforge::ToImportanceMap(*im)) {
    if (mean.size() != im->entries.at(name).sums.size()) __builtin_trap();
    for (float v : mean) total += v;
  }
  [[maybe_unused]] static volatile double sink;
  sink = total;
  return 0;
}

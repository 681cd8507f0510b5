// Measures the machine's sustained read bandwidth with one reader stream per thread over a buffer much
// larger than the caches: the ceiling decode speed is compared with (decode is memory-bound: every weight is
// read once per token).
#pragma once

#include <cstddef>

namespace qforge {

// Bytes per second; buffer_bytes split across `threads` streams; best of `repeats` passes.
double MeasureReadBandwidth(size_t buffer_bytes, int threads, int repeats = 3);

}  // namespace qforge

// Measures the machine's sustained read bandwidth over a buffer much larger than the caches: the ceiling
// decode speed is compared with (decode is memory-bound: every weight is read once per token). Each thread
// reads its own slice as 4 streams; the result is the best of a plain reader and software-prefetching ones,
// so that the bound is at least as hard to reach as the fastest way we know to read memory.
#pragma once

#include <cstddef>

namespace qforge {

// Bytes per second; buffer_bytes split across `threads`; the best pass of any reader over `repeats` rounds.
double MeasureReadBandwidth(size_t buffer_bytes, int threads, int repeats = 3);

}  // namespace qforge

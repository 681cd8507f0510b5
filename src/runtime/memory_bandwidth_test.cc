// The bandwidth probe's readers read every word of their range exactly once (a reader that skipped words would
// report more bandwidth than the machine has), and the probe returns a finite positive rate.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "bandwidth_readers.h"
#include "qforge/runtime/memory_bandwidth.h"

namespace qforge {
namespace {

TEST(BandwidthReaders, EachSumsEveryWordOfItsRangeOnce) {
  // Random words, so that a word read twice or skipped changes the sum; ranges with and without whole lines
  // per stream, odd starts, and tails of every length.
  std::mt19937_64 rng(7);
  std::vector<uint64_t> buf(4096 + 64);
  for (uint64_t& w : buf) w = rng();
  const int64_t ranges[][2] = {{0, 0}, {0, 1}, {0, 3}, {5, 36}, {0, 32}, {3, 35}, {0, 33}, {1, 100},
                               {0, 1024}, {7, 1031}, {17, 4000}, {0, 4096}};
  for (const auto& [b, e] : ranges) {
    const uint64_t want = std::accumulate(buf.begin() + b, buf.begin() + e, uint64_t{0});
    for (size_t k = 0; k < std::size(bandwidth::kReaders); ++k)
      EXPECT_EQ(bandwidth::kReaders[k](buf.data(), b, e), want) << "reader " << k << " on [" << b << ", " << e << ")";
  }
}

TEST(MeasureReadBandwidth, ReturnsAFinitePositiveRate) {
  for (int threads : {1, 2}) {
    const double bw = MeasureReadBandwidth(size_t{4} << 20, threads, 1);
    EXPECT_TRUE(std::isfinite(bw)) << threads << " threads";
    EXPECT_GT(bw, 0) << threads << " threads";
  }
}

}  // namespace
}  // namespace qforge

// The bandwidth probe's readers read every word of their range exactly once (a reader that skipped words would
// report more bandwidth than the machine has), and the probe returns a finite positive rate.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "bandwidth_readers.h"
#include "qforge/runtime/memory_bandwidth.h"

namespace qforge {
namespace {

TEST(BandwidthReaders, EachSumsEveryWordOfItsRangeOnce) {
  // Random words, so that a word read twice or skipped changes the sum. Every length from 0 to 99 words from
  // an odd start (the prefetching readers' tail, (e - b) mod 32 words, takes every value), then long ranges.
  std::mt19937_64 rng(7);
  std::vector<uint64_t> buf(4096 + 64);
  for (uint64_t& w : buf) w = rng();
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (int64_t n = 0; n < 100; ++n) ranges.emplace_back(3, 3 + n);
  for (const auto& r : {std::pair<int64_t, int64_t>{0, 1024}, {7, 1031}, {17, 4000}, {0, 4096}}) ranges.push_back(r);
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

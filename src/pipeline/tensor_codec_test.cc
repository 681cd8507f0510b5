// EncodeSourceTensor's finiteness check: the first NaN/Inf in row-major order is reported with its index,
// whatever block of the vectorized scan it falls in and however the rows are split over threads; finite
// extremes (±FLT_MAX, subnormals, -0) pass.
#include "qforge/pipeline/tensor_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace qforge {
namespace {

constexpr uint64_t kCols = 64, kRows = 40;  // 2560 elements: ten blocks of the 256-element scan

SourceTensor F32Tensor(const std::vector<float>& v) {
  SourceTensor t;
  t.name = "blk.0.ffn_up.weight";
  t.ne = {kCols, kRows};
  t.type = GgmlType::F32;
  t.raw = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float));
  t.read_f32 = [&v](float* dst) {
    std::memcpy(dst, v.data(), v.size() * sizeof(float));
    return Status::Ok();
  };
  return t;
}

Status Encode(const std::vector<float>& v, int threads) {
  std::vector<uint8_t> out(kRows * (kCols / 32) * 34);  // Q8_0: 34 bytes per 32 values
  return EncodeSourceTensor(F32Tensor(v), GgmlType::Q8_0, out, nullptr, threads, /*check_finite=*/true);
}

std::vector<float> FiniteRow() {
  std::vector<float> v(kCols * kRows);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(static_cast<float>(i)) * 0.1f;
  return v;
}

TEST(TensorCodec, FirstNonFiniteElementIsNamedAtEveryPosition) {
  const float kBad[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::quiet_NaN()};
  const size_t n = kCols * kRows;
  for (size_t at : {size_t{0}, size_t{1}, size_t{255}, size_t{256}, size_t{257}, size_t{1000}, n - 1}) {
    for (float bad : kBad) {
      for (int threads : {1, 2}) {
        std::vector<float> v = FiniteRow();
        v[at] = bad;
        if (at + 300 < n) v[at + 300] = std::numeric_limits<float>::quiet_NaN();  // a later one is not reported
        const Status s = Encode(v, threads);
        ASSERT_FALSE(s.ok()) << "element " << at << " = " << bad << " accepted";
        const std::string expected = "tensor blk.0.ffn_up.weight: element " + std::to_string(at) + " (row " +
                                     std::to_string(at / kCols) + ", column " + std::to_string(at % kCols) + ")";
        EXPECT_NE(s.reason().find(expected), std::string::npos) << s.reason();
      }
    }
  }
}

TEST(TensorCodec, FiniteExtremesPass) {
  std::vector<float> v = FiniteRow();
  v[3] = std::numeric_limits<float>::max();
  v[300] = -std::numeric_limits<float>::max();
  v[600] = std::numeric_limits<float>::denorm_min();
  v[900] = -0.0f;
  EXPECT_TRUE(Encode(v, 1).ok());
  EXPECT_TRUE(Encode(v, 2).ok());
}

}  // namespace
}  // namespace qforge

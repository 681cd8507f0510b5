// Plain integer schemes: names, scale/zero rules, encode and decode (see include/qforge/quant/int_schemes.h).
#include "qforge/quant/int_schemes.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>

namespace qforge {
namespace {

std::vector<IntScheme> AllSchemes() {
  std::vector<IntScheme> out;
  out.push_back({"int8-sym-tensor", 8, true, IntGranularity::kTensor, 0});
  out.push_back({"int8-sym-channel", 8, true, IntGranularity::kChannel, 0});
  const uint64_t groups[] = {32, 64, 128};
  for (uint64_t g : groups) out.push_back({fmt::format("int8-sym-g{}", g), 8, true, IntGranularity::kGroup, g});
  for (uint64_t g : groups) out.push_back({fmt::format("int8-asym-g{}", g), 8, false, IntGranularity::kGroup, g});
  for (uint64_t g : groups) out.push_back({fmt::format("int4-sym-g{}", g), 4, true, IntGranularity::kGroup, g});
  for (uint64_t g : groups) out.push_back({fmt::format("int4-asym-g{}", g), 4, false, IntGranularity::kGroup, g});
  return out;
}

void PutNibble(uint8_t* row, uint64_t col, unsigned v) {
  uint8_t& b = row[col / 2];
  if (col % 2 == 0) {
    b = static_cast<uint8_t>((b & 0xF0) | (v & 0x0F));
  } else {
    b = static_cast<uint8_t>((b & 0x0F) | ((v & 0x0F) << 4));
  }
}

unsigned GetNibble(const uint8_t* row, uint64_t col) {
  return col % 2 == 0 ? row[col / 2] & 0x0F : row[col / 2] >> 4;
}

}  // namespace

uint64_t IntScheme::GroupsPerRow(uint64_t cols) const {
  if (granularity != IntGranularity::kGroup) return 1;
  return (cols + group_size - 1) / group_size;
}

uint64_t IntScheme::StorageBytes(uint64_t rows, uint64_t cols) const {
  const uint64_t n_scales = ScaleRows(rows) * GroupsPerRow(cols);
  return rows * PackedRowBytes(cols) + n_scales * 4 + (symmetric ? 0 : n_scales);
}

double IntScheme::BitsPerWeight(uint64_t rows, uint64_t cols) const {
  if (rows == 0 || cols == 0) return 0.0;
  return 8.0 * static_cast<double>(StorageBytes(rows, cols)) / static_cast<double>(rows * cols);
}

std::vector<std::string> IntSchemeNames() {
  std::vector<std::string> names;
  for (const auto& s : AllSchemes()) names.push_back(s.name);
  return names;
}

StatusOr<IntScheme> ParseIntScheme(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& s : AllSchemes())
    if (s.name == lower) return s;
  std::string valid;
  for (const auto& n : IntSchemeNames()) valid += (valid.empty() ? "" : ", ") + n;
  return Status::Error(fmt::format("unknown integer scheme '{}'; valid schemes: {}", name, valid));
}

int QuantizeSymmetric(float x, float scale, int qmax) {
  if (scale == 0.0f) return 0;
  const float q = std::round(x / scale);
  return static_cast<int>(std::clamp(q, static_cast<float>(-qmax), static_cast<float>(qmax)));
}

int QuantizeAsymmetric(float x, float scale, int zero, int qmax) {
  if (scale == 0.0f) return zero;
  const float q = std::round(x / scale) + static_cast<float>(zero);
  return static_cast<int>(std::clamp(q, 0.0f, static_cast<float>(qmax)));
}

void AsymmetricParams(float min, float max, int qmax, float* scale, int* zero) {
  min = std::min(min, 0.0f);
  max = std::max(max, 0.0f);
  *scale = (max - min) / static_cast<float>(qmax);
  if (*scale == 0.0f) {
    *zero = 0;
    return;
  }
  const float z = std::round(-min / *scale);
  *zero = static_cast<int>(std::clamp(z, 0.0f, static_cast<float>(qmax)));
}

StatusOr<IntQuantized> QuantizeInt(const IntScheme& scheme, const float* x, uint64_t rows, uint64_t cols) {
  if (scheme.bits != 8 && scheme.bits != 4) return Status::Error(fmt::format("{}: bits must be 4 or 8", scheme.name));
  if (scheme.granularity == IntGranularity::kGroup && scheme.group_size == 0)
    return Status::Error(fmt::format("{}: group size 0", scheme.name));
  if (scheme.granularity == IntGranularity::kTensor && !scheme.symmetric)
    return Status::Error(fmt::format("{}: per-tensor scales are symmetric only", scheme.name));
  for (uint64_t i = 0; i < rows * cols; ++i) {
    if (!std::isfinite(x[i]))
      return Status::Error(fmt::format("{}: non-finite value {} at element {} (row {}, column {})", scheme.name,
                                       x[i], i, i / cols, i % cols));
  }
  IntQuantized out;
  out.scheme = scheme;
  out.rows = rows;
  out.cols = cols;
  const uint64_t row_bytes = scheme.PackedRowBytes(cols);
  const uint64_t groups = scheme.GroupsPerRow(cols);
  const uint64_t width = scheme.granularity == IntGranularity::kGroup ? scheme.group_size : cols;
  out.qweight.assign(rows * row_bytes, 0);
  out.scales.assign(scheme.ScaleRows(rows) * groups, 0.0f);
  if (!scheme.symmetric) out.zeros.assign(out.scales.size(), 0);
  const int qmax = scheme.qmax();

  if (scheme.granularity == IntGranularity::kTensor) {
    float absmax = 0.0f;
    for (uint64_t i = 0; i < rows * cols; ++i) absmax = std::max(absmax, std::fabs(x[i]));
    out.scales[0] = absmax / static_cast<float>(qmax);
  }
  for (uint64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    uint8_t* qr = out.qweight.data() + r * row_bytes;
    for (uint64_t g = 0; g < groups; ++g) {
      const uint64_t c0 = g * width, c1 = std::min(cols, c0 + width);
      const uint64_t si = scheme.granularity == IntGranularity::kTensor ? 0 : r * groups + g;
      float scale = 0.0f;
      int zero = 0;
      if (scheme.symmetric) {
        if (scheme.granularity != IntGranularity::kTensor) {
          float absmax = 0.0f;
          for (uint64_t c = c0; c < c1; ++c) absmax = std::max(absmax, std::fabs(xr[c]));
          out.scales[si] = absmax / static_cast<float>(qmax);
        }
        scale = out.scales[si];
      } else {
        float mn = xr[c0], mx = xr[c0];
        for (uint64_t c = c0; c < c1; ++c) {
          mn = std::min(mn, xr[c]);
          mx = std::max(mx, xr[c]);
        }
        AsymmetricParams(mn, mx, qmax, &scale, &zero);
        out.scales[si] = scale;
        out.zeros[si] = static_cast<uint8_t>(zero);
      }
      for (uint64_t c = c0; c < c1; ++c) {
        if (scheme.symmetric) {
          const int q = QuantizeSymmetric(xr[c], scale, qmax);
          if (scheme.bits == 8) {
            qr[c] = static_cast<uint8_t>(static_cast<int8_t>(q));
          } else {
            PutNibble(qr, c, static_cast<unsigned>(q + 8));
          }
        } else {
          const int q = QuantizeAsymmetric(xr[c], scale, zero, qmax);
          if (scheme.bits == 8) {
            qr[c] = static_cast<uint8_t>(q);
          } else {
            PutNibble(qr, c, static_cast<unsigned>(q));
          }
        }
      }
    }
  }
  return out;
}

Status DequantizeInt(const IntQuantized& q, float* out) {
  const IntScheme& s = q.scheme;
  const uint64_t row_bytes = s.PackedRowBytes(q.cols);
  const uint64_t groups = s.GroupsPerRow(q.cols);
  const uint64_t n_scales = s.ScaleRows(q.rows) * groups;
  if (q.qweight.size() != q.rows * row_bytes)
    return Status::Error(fmt::format("{}: qweight has {} bytes, expected {}", s.name, q.qweight.size(),
                                     q.rows * row_bytes));
  if (q.scales.size() != n_scales)
    return Status::Error(fmt::format("{}: {} scales, expected {}", s.name, q.scales.size(), n_scales));
  if (q.zeros.size() != (s.symmetric ? 0 : n_scales))
    return Status::Error(fmt::format("{}: {} zero points, expected {}", s.name, q.zeros.size(),
                                     s.symmetric ? 0 : n_scales));
  const uint64_t width = s.granularity == IntGranularity::kGroup ? s.group_size : q.cols;
  for (uint64_t r = 0; r < q.rows; ++r) {
    const uint8_t* qr = q.qweight.data() + r * row_bytes;
    for (uint64_t c = 0; c < q.cols; ++c) {
      const uint64_t g = c / width;
      const uint64_t si = s.granularity == IntGranularity::kTensor ? 0 : r * groups + g;
      const float scale = q.scales[si];
      int v;
      if (s.symmetric) {
        v = s.bits == 8 ? static_cast<int>(static_cast<int8_t>(qr[c])) : static_cast<int>(GetNibble(qr, c)) - 8;
      } else {
        const int raw = s.bits == 8 ? qr[c] : static_cast<int>(GetNibble(qr, c));
        v = raw - static_cast<int>(q.zeros[si]);
      }
      out[r * q.cols + c] = static_cast<float>(v) * scale;
    }
  }
  return Status::Ok();
}

}  // namespace qforge

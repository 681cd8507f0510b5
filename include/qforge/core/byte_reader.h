// A bounds-checked little-endian cursor over untrusted bytes. Every read checks the remaining length
// first and reports the absolute offset of the failure, so parsers never touch memory past the file.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "qforge/core/status.h"

namespace qforge {

class ByteReader {
 public:
  // base_offset: the offset of bytes[0] within the file, for error messages.
  explicit ByteReader(std::span<const uint8_t> bytes, std::string file = {}, uint64_t base_offset = 0)
      : bytes_(bytes), file_(std::move(file)), base_(base_offset) {}

  uint64_t pos() const { return pos_; }                 // relative to the span
  uint64_t offset() const { return base_ + pos_; }      // absolute, for messages
  uint64_t remaining() const { return bytes_.size() - pos_; }
  const std::string& file() const { return file_; }

  template <typename T>
  Status Read(T* out, std::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (remaining() < sizeof(T)) return Truncated(what);
    std::memcpy(out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }
  // A view of the next n bytes (no copy).
  Status ReadBytes(uint64_t n, std::span<const uint8_t>* out, std::string_view what) {
    if (remaining() < n) return Truncated(what, n);
    *out = bytes_.subspan(static_cast<size_t>(pos_), static_cast<size_t>(n));
    pos_ += n;
    return Status::Ok();
  }
  Status Skip(uint64_t n, std::string_view what) {
    if (remaining() < n) return Truncated(what, n);
    pos_ += n;
    return Status::Ok();
  }
  Status Error(std::string reason) const { return Status::Error(std::move(reason), file_, static_cast<int64_t>(offset())); }

 private:
  Status Truncated(std::string_view what, uint64_t need = 0) const {
    std::string r = "file truncated while reading " + std::string(what);
    if (need > 0) r += " (" + std::to_string(need) + " bytes needed, " + std::to_string(remaining()) + " left)";
    return Error(std::move(r));
  }

  std::span<const uint8_t> bytes_;
  std::string file_;
  uint64_t base_ = 0;
  uint64_t pos_ = 0;
};

}  // namespace qforge

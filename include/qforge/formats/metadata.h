// GGUF-style key/value metadata, kept in insertion order (written files are deterministic).
// Every source format converts its configuration into these keys (llama.*, tokenizer.ggml.*, general.*).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qforge {

// GGUF value type codes (gguf.md).
enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  U64 = 10, I64 = 11, F64 = 12,
};
std::string_view GgufValueTypeName(GgufValueType t);
bool IsValidGgufValueType(uint32_t code);

// One value: a scalar of `type`, or an array of `elem_type` values (arrays may nest).
struct MetaValue {
  GgufValueType type = GgufValueType::U32;
  uint64_t u = 0;     // U8/U16/U32/U64/BOOL
  int64_t i = 0;      // I8/I16/I32/I64
  double f = 0;       // F32/F64 (F32 values are exactly representable)
  std::string s;      // STRING
  GgufValueType elem_type = GgufValueType::U8;  // ARRAY
  std::vector<MetaValue> array;                 // ARRAY

  static MetaValue U8(uint8_t v);
  static MetaValue I8(int8_t v);
  static MetaValue U16(uint16_t v);
  static MetaValue I16(int16_t v);
  static MetaValue U32(uint32_t v);
  static MetaValue I32(int32_t v);
  static MetaValue U64(uint64_t v);
  static MetaValue I64(int64_t v);
  static MetaValue F32(float v);
  static MetaValue F64(double v);
  static MetaValue Bool(bool v);
  static MetaValue String(std::string v);
  static MetaValue Array(GgufValueType elem_type, std::vector<MetaValue> values);
  static MetaValue StringArray(const std::vector<std::string>& values);
  static MetaValue F32Array(const std::vector<float>& values);
  static MetaValue I32Array(const std::vector<int32_t>& values);

  // Integer value of any integer/bool scalar that fits; nullopt otherwise.
  std::optional<int64_t> AsInt() const;
  std::optional<double> AsFloat() const;  // any numeric scalar
  const std::string* AsString() const { return type == GgufValueType::STRING ? &s : nullptr; }
  // Human-readable rendering; long arrays are abbreviated to their first `max_items` elements.
  std::string ToString(size_t max_items = 8) const;

  bool operator==(const MetaValue& o) const;
};

class Metadata {
 public:
  using Entry = std::pair<std::string, MetaValue>;

  const MetaValue* Find(std::string_view key) const;
  // Replaces an existing key in place or appends a new one.
  void Set(const std::string& key, MetaValue value);
  bool Erase(std::string_view key);
  std::optional<int64_t> GetInt(std::string_view key) const;
  std::optional<double> GetFloat(std::string_view key) const;
  std::optional<std::string> GetString(std::string_view key) const;

  const std::vector<Entry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

 private:
  std::vector<Entry> entries_;
};

}  // namespace qforge

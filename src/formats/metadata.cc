// Metadata values: constructors, conversions and rendering for `inspect`.
#include "qforge/formats/metadata.h"

#include <fmt/format.h>

namespace qforge {

std::string_view GgufValueTypeName(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8: return "u8";
    case GgufValueType::I8: return "i8";
    case GgufValueType::U16: return "u16";
    case GgufValueType::I16: return "i16";
    case GgufValueType::U32: return "u32";
    case GgufValueType::I32: return "i32";
    case GgufValueType::F32: return "f32";
    case GgufValueType::BOOL: return "bool";
    case GgufValueType::STRING: return "str";
    case GgufValueType::ARRAY: return "arr";
    case GgufValueType::U64: return "u64";
    case GgufValueType::I64: return "i64";
    case GgufValueType::F64: return "f64";
  }
  return "?";
}

bool IsValidGgufValueType(uint32_t code) { return code <= 12; }

#define QF_SCALAR_CTOR(Name, Field, Type)  \
  MetaValue MetaValue::Name(Type v) {      \
    MetaValue m;                           \
    m.type = GgufValueType::Name;          \
    m.Field = v;                           \
    return m;                              \
  }
QF_SCALAR_CTOR(U8, u, uint8_t)
QF_SCALAR_CTOR(I8, i, int8_t)
QF_SCALAR_CTOR(U16, u, uint16_t)
QF_SCALAR_CTOR(I16, i, int16_t)
QF_SCALAR_CTOR(U32, u, uint32_t)
QF_SCALAR_CTOR(I32, i, int32_t)
QF_SCALAR_CTOR(U64, u, uint64_t)
QF_SCALAR_CTOR(I64, i, int64_t)
QF_SCALAR_CTOR(F32, f, float)
QF_SCALAR_CTOR(F64, f, double)
#undef QF_SCALAR_CTOR

MetaValue MetaValue::Bool(bool v) {
  MetaValue m;
  m.type = GgufValueType::BOOL;
  m.u = v ? 1 : 0;
  return m;
}
MetaValue MetaValue::String(std::string v) {
  MetaValue m;
  m.type = GgufValueType::STRING;
  m.s = std::move(v);
  return m;
}
MetaValue MetaValue::Array(GgufValueType elem_type, std::vector<MetaValue> values) {
  MetaValue m;
  m.type = GgufValueType::ARRAY;
  m.elem_type = elem_type;
  m.array = std::move(values);
  return m;
}
MetaValue MetaValue::StringArray(const std::vector<std::string>& values) {
  std::vector<MetaValue> v;
  v.reserve(values.size());
  for (const auto& s : values) v.push_back(String(s));
  return Array(GgufValueType::STRING, std::move(v));
}
MetaValue MetaValue::F32Array(const std::vector<float>& values) {
  std::vector<MetaValue> v;
  v.reserve(values.size());
  for (float x : values) v.push_back(F32(x));
  return Array(GgufValueType::F32, std::move(v));
}
MetaValue MetaValue::I32Array(const std::vector<int32_t>& values) {
  std::vector<MetaValue> v;
  v.reserve(values.size());
  for (int32_t x : values) v.push_back(I32(x));
  return Array(GgufValueType::I32, std::move(v));
}

std::optional<int64_t> MetaValue::AsInt() const {
  switch (type) {
    case GgufValueType::U8: case GgufValueType::U16: case GgufValueType::U32: case GgufValueType::BOOL:
      return static_cast<int64_t>(u);
    case GgufValueType::U64:
      if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      return static_cast<int64_t>(u);
    case GgufValueType::I8: case GgufValueType::I16: case GgufValueType::I32: case GgufValueType::I64:
      return i;
    default:
      return std::nullopt;
  }
}

std::optional<double> MetaValue::AsFloat() const {
  if (type == GgufValueType::F32 || type == GgufValueType::F64) return f;
  if (auto v = AsInt()) return static_cast<double>(*v);
  return std::nullopt;
}

std::string MetaValue::ToString(size_t max_items) const {
  switch (type) {
    case GgufValueType::STRING: return fmt::format("\"{}\"", s.size() > 80 ? s.substr(0, 77) + "..." : s);
    case GgufValueType::F32: return fmt::format("{}", static_cast<float>(f));
    case GgufValueType::F64: return fmt::format("{}", f);
    case GgufValueType::BOOL: return u ? "true" : "false";
    case GgufValueType::ARRAY: {
      std::string out = fmt::format("[{} x {}]", array.size(), GgufValueTypeName(elem_type));
      if (max_items == 0) return out;
      out += " [";
      for (size_t k = 0; k < array.size() && k < max_items; ++k) out += (k ? ", " : "") + array[k].ToString(0);
      if (array.size() > max_items) out += ", ...";
      return out + "]";
    }
    default: {
      auto v = AsInt();
      return v ? fmt::format("{}", *v) : fmt::format("{}", u);
    }
  }
}

bool MetaValue::operator==(const MetaValue& o) const {
  if (type != o.type) return false;
  switch (type) {
    case GgufValueType::STRING: return s == o.s;
    case GgufValueType::F32: case GgufValueType::F64: return f == o.f || (f != f && o.f != o.f);
    case GgufValueType::ARRAY: return elem_type == o.elem_type && array == o.array;
    default: return u == o.u && i == o.i;
  }
}

const MetaValue* Metadata::Find(std::string_view key) const {
  for (const auto& e : entries_)
    if (e.first == key) return &e.second;
  return nullptr;
}

void Metadata::Set(const std::string& key, MetaValue value) {
  for (auto& e : entries_) {
    if (e.first == key) {
      e.second = std::move(value);
      return;
    }
  }
  entries_.emplace_back(key, std::move(value));
}

bool Metadata::Erase(std::string_view key) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->first == key) {
      entries_.erase(it);
      return true;
    }
  }
  return false;
}

std::optional<int64_t> Metadata::GetInt(std::string_view key) const {
  const MetaValue* v = Find(key);
  return v ? v->AsInt() : std::nullopt;
}
std::optional<double> Metadata::GetFloat(std::string_view key) const {
  const MetaValue* v = Find(key);
  return v ? v->AsFloat() : std::nullopt;
}
std::optional<std::string> Metadata::GetString(std::string_view key) const {
  const MetaValue* v = Find(key);
  if (v == nullptr || v->AsString() == nullptr) return std::nullopt;
  return *v->AsString();
}

}  // namespace qforge

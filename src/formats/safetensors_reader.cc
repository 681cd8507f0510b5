// safetensors reader: validates one file (header length, JSON header, dtypes, shapes, offsets, and that the
// tensors tile the data area exactly, as the reference implementation demands) and whole checkpoints
// (single file or model.safetensors.index.json + shards, cross-checked against the index).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "qforge/core/checked.h"
#include "qforge/formats/safetensors.h"
#include "strict_json.h"

namespace qforge {
namespace {

using nlohmann::json;

uint64_t LoadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// Parses JSON without letting an exception escape and rejects duplicate keys (two entries for one
// tensor); the error names the byte offset in the file.
StatusOr<json> ParseJson(std::string_view text, const std::string& file, uint64_t base_offset) {
  return formats_internal::ParseStrictJson(text, file, base_offset);
}

// Reads a non-negative integer JSON value (safetensors writes shapes and offsets as unsigned).
std::optional<uint64_t> AsUnsigned(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

struct Range {
  uint64_t begin, end;
  size_t index;
};

Status ParseTensorEntry(const std::string& name, const json& v, uint64_t data_size, const std::string& file,
                        SafetensorsTensor* t, Range* r) {
  auto err = [&](const std::string& why) { return Status::Error("tensor " + Quote(name) + ": " + why, file, 8); };
  if (!v.is_object()) return err("entry is not an object");
  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) return err("missing or non-string \"dtype\"");
  auto dtype = DTypeFromName(dt->get<std::string>());
  if (!dtype) return err("unknown dtype " + Quote(dt->get<std::string>()) +
                         " (supported: F32 F16 BF16 F64 I8 U8 I16 I32 I64 BOOL)");
  t->dtype = *dtype;
  auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) return err("missing or non-array \"shape\"");
  uint64_t numel = 1;
  for (size_t i = 0; i < sh->size(); ++i) {
    const json& d = (*sh)[i];
    if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0)
      return err("shape entry " + std::to_string(i) + " is negative (" + std::to_string(d.get<int64_t>()) + ")");
    auto u = AsUnsigned(d);
    if (!u || *u > static_cast<uint64_t>(INT64_MAX)) return err("shape entry " + std::to_string(i) + " is not a non-negative integer");
    auto n = CheckedMul(numel, *u);
    if (!n) return err("shape element count overflows 64 bits");
    numel = *n;
    t->shape.push_back(static_cast<int64_t>(*u));
  }
  auto nbytes = CheckedMul(numel, DTypeSize(*dtype));
  if (!nbytes) return err("byte size overflows 64 bits");
  auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2) return err("\"data_offsets\" must be [begin, end]");
  auto b = AsUnsigned((*off)[0]), e = AsUnsigned((*off)[1]);
  if (!b || !e) return err("\"data_offsets\" entries must be non-negative integers");
  if (*b > *e) return err("data_offsets reversed: begin " + std::to_string(*b) + " > end " + std::to_string(*e));
  if (*e > data_size)
    return err("data_offsets end " + std::to_string(*e) + " is past the data area (" + std::to_string(data_size) + " bytes)");
  if (*e - *b != *nbytes)
    return err("data_offsets span " + std::to_string(*e - *b) + " bytes but shape x " + std::string(DTypeName(*dtype)) +
               " needs " + std::to_string(*nbytes));
  r->begin = *b;
  r->end = *e;
  return Status::Ok();
}

StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error("cannot open file", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::Error("read error", path);
  return ss.str();
}

bool IsSafeShardName(const std::string& s) {
  if (s.empty() || s[0] == '/') return false;
  for (const auto& part : std::filesystem::path(s)) if (part == "..") return false;
  return true;
}

// Checks one index against the shards it names; fills `ckpt->shards`.
Status ReadIndexedCheckpoint(const std::string& index_path, SafetensorsCheckpoint* ckpt) {
  QF_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(index_path));
  QF_ASSIGN_OR_RETURN(const auto shard_of, ParseSafetensorsIndex(text, index_path));
  std::map<std::string, std::set<std::string>> by_shard;  // shard -> tensors the index puts there
  for (const auto& [tensor, shard] : shard_of) by_shard[shard].insert(tensor);
  std::filesystem::path dir = std::filesystem::path(index_path).parent_path();
  for (const auto& [shard, names] : by_shard) {
    std::string shard_path = (dir / shard).string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(shard_path, ec))
      return Status::Error("index names shard " + Quote(shard) + " (for tensor " + Quote(*names.begin()) +
                           ") which does not exist", index_path);
    QF_ASSIGN_OR_RETURN(SafetensorsFile f, ReadSafetensors(shard_path));
    std::set<std::string> seen;
    for (const auto& t : f.tensors) {
      auto where = shard_of.find(t.name);
      if (where == shard_of.end())
        return Status::Error("tensor " + Quote(t.name) + " is in shard " + Quote(shard) + " but not in the index " +
                             Quote(index_path), shard_path);
      if (where->second != shard)
        return Status::Error("tensor " + Quote(t.name) + " is in shard " + Quote(shard) + " but the index " +
                             Quote(index_path) + " maps it to " + Quote(where->second), shard_path);
      seen.insert(t.name);
    }
    for (const auto& n : names)
      if (!seen.count(n))
        return Status::Error("index maps tensor " + Quote(n) + " to shard " + Quote(shard) +
                             " which does not contain it", index_path);
    ckpt->shards.push_back(std::move(f));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::map<std::string, std::string>> ParseSafetensorsIndex(std::string_view text, const std::string& name) {
  QF_ASSIGN_OR_RETURN(json index, ParseJson(text, name, 0));
  if (!index.is_object()) return Status::Error("index JSON is not an object", name);
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object()) return Status::Error("missing \"weight_map\" object", name);
  std::map<std::string, std::string> shard_of;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string()) return Status::Error("weight_map entry " + Quote(it.key()) + " is not a string", name);
    std::string shard = it->get<std::string>();
    if (!IsSafeShardName(shard))
      return Status::Error("weight_map names shard " + Quote(shard) + " outside the model folder", name);
    shard_of[it.key()] = std::move(shard);
  }
  if (shard_of.empty()) return Status::Error("weight_map is empty", name);
  return shard_of;
}

StatusOr<SafetensorsFile> ParseSafetensors(std::span<const uint8_t> bytes, const std::string& name) {
  if (bytes.size() < 8)
    return Status::Error("file too small for the 8-byte header length (" + std::to_string(bytes.size()) + " bytes)", name, 0);
  const uint64_t n = LoadLe64(bytes.data());
  if (n > kSafetensorsMaxHeader)
    return Status::Error("header length " + std::to_string(n) + " exceeds the 100 MB limit", name, 0);
  if (n > bytes.size() - 8)
    return Status::Error("header length " + std::to_string(n) + " exceeds the file size (" +
                         std::to_string(bytes.size() - 8) + " bytes after the length field)", name, 0);
  std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), n);
  QF_ASSIGN_OR_RETURN(json header, ParseJson(text, name, 8));
  if (!header.is_object()) return Status::Error("header JSON is not an object", name, 8);

  const uint64_t data_begin = 8 + n;
  const uint64_t data_size = bytes.size() - data_begin;
  SafetensorsFile out;
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return Status::Error("__metadata__ is not an object", name, 8);
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string())
          return Status::Error("__metadata__ must map strings to strings (key " + Quote(m.key()) + " is " +
                               m->type_name() + ")", name, 8);
        out.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    SafetensorsTensor t;
    t.name = it.key();
    t.file = name;
    Range r{};
    QF_RETURN_IF_ERROR(ParseTensorEntry(t.name, *it, data_size, name, &t, &r));
    r.index = out.tensors.size();
    out.tensors.push_back(std::move(t));
    ranges.push_back(r);
  }

  // The reference implementation requires the tensors to tile [0, data_size) exactly.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  const std::string* prev = nullptr;
  for (const Range& r : ranges) {
    const std::string& cur = out.tensors[r.index].name;
    if (r.begin < pos)
      return Status::Error("tensors " + Quote(*prev) + " and " + Quote(cur) + " overlap", name,
                           static_cast<int64_t>(data_begin + r.begin));
    if (r.begin > pos)
      return Status::Error("gap of " + std::to_string(r.begin - pos) + " bytes in the data area before tensor " +
                           Quote(cur) + (prev ? " (after " + Quote(*prev) + ")" : std::string()), name,
                           static_cast<int64_t>(data_begin + pos));
    pos = r.end;
    prev = &cur;
  }
  if (pos != data_size)
    return Status::Error(std::to_string(data_size - pos) + " bytes at the end of the data area belong to no tensor",
                         name, static_cast<int64_t>(data_begin + pos));

  std::vector<SafetensorsTensor> ordered;
  ordered.reserve(ranges.size());
  for (const Range& r : ranges) {
    SafetensorsTensor t = std::move(out.tensors[r.index]);
    t.data = bytes.subspan(static_cast<size_t>(data_begin + r.begin), static_cast<size_t>(r.end - r.begin));
    ordered.push_back(std::move(t));
  }
  out.tensors = std::move(ordered);
  return out;
}

StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path) {
  QF_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> mf, MappedFile::Open(path));
  QF_ASSIGN_OR_RETURN(SafetensorsFile f, ParseSafetensors(mf->bytes(), path));
  f.file = std::move(mf);
  return f;
}

const SafetensorsTensor* SafetensorsCheckpoint::Find(const std::string& name) const {
  auto it = std::lower_bound(tensors.begin(), tensors.end(), name,
                             [](const SafetensorsTensor* t, const std::string& n) { return t->name < n; });
  return it != tensors.end() && (*it)->name == name ? *it : nullptr;
}

StatusOr<SafetensorsCheckpoint> ReadSafetensorsCheckpoint(const std::string& path) {
  namespace fs = std::filesystem;
  SafetensorsCheckpoint ckpt;
  std::error_code ec;
  std::string single;
  if (fs::is_directory(path, ec)) {
    fs::path index = fs::path(path) / "model.safetensors.index.json";
    fs::path one = fs::path(path) / "model.safetensors";
    if (fs::is_regular_file(index, ec)) {
      QF_RETURN_IF_ERROR(ReadIndexedCheckpoint(index.string(), &ckpt));
    } else if (fs::is_regular_file(one, ec)) {
      single = one.string();
    } else {
      return Status::Error("no model.safetensors or model.safetensors.index.json in the folder", path);
    }
  } else if (path.size() >= 11 && path.compare(path.size() - 11, 11, ".index.json") == 0) {
    QF_RETURN_IF_ERROR(ReadIndexedCheckpoint(path, &ckpt));
  } else {
    single = path;
  }
  if (!single.empty()) {
    QF_ASSIGN_OR_RETURN(SafetensorsFile f, ReadSafetensors(single));
    ckpt.shards.push_back(std::move(f));
  }
  for (const auto& s : ckpt.shards)
    for (const auto& t : s.tensors) ckpt.tensors.push_back(&t);
  std::sort(ckpt.tensors.begin(), ckpt.tensors.end(),
            [](const SafetensorsTensor* a, const SafetensorsTensor* b) { return a->name < b->name; });
  for (size_t i = 1; i < ckpt.tensors.size(); ++i)
    if (ckpt.tensors[i]->name == ckpt.tensors[i - 1]->name)
      return Status::Error("tensor " + Quote(ckpt.tensors[i]->name) + " appears in both " +
                           Quote(ckpt.tensors[i - 1]->file) + " and " + Quote(ckpt.tensors[i]->file), path);
  return ckpt;
}

}  // namespace qforge

// safetensors writer: a compact JSON header ("__metadata__" first, then tensors in the caller's order, each
// as {"dtype","shape","data_offsets"}) padded with spaces to a multiple of 8, then the data contiguously.
// The same input always yields the same bytes, and reading then re-writing a file reproduces it exactly.
#include <set>

#include <nlohmann/json.hpp>

#include "qforge/core/atomic_file.h"
#include "qforge/core/checked.h"
#include "qforge/formats/safetensors.h"

namespace qforge {

Status WriteSafetensors(const std::string& path, const std::vector<SafetensorsTensorOut>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps insertion order, so the header lists tensors in data order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    auto err = [&](const std::string& why) { return Status::Error("tensor '" + t.name + "': " + why, path); };
    if (t.name == "__metadata__") return err("name is reserved");
    if (!names.insert(t.name).second) return err("duplicate tensor name");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) return err("negative dimension");
      auto n = CheckedMul(numel, static_cast<uint64_t>(d));
      if (!n) return err("element count overflows");
      numel = *n;
    }
    auto nbytes = CheckedMul(numel, DTypeSize(t.dtype));
    if (!nbytes || *nbytes != t.data.size())
      return err("data has " + std::to_string(t.data.size()) + " bytes but the shape and dtype need " +
                 (nbytes ? std::to_string(*nbytes) : std::string("more than 2^64")));
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = std::string(DTypeName(t.dtype));
    entry["shape"] = t.shape;
    entry["data_offsets"] = {offset, offset + *nbytes};
    header[t.name] = std::move(entry);
    offset += *nbytes;
  }
  std::string text;
  try {
    text = header.dump();  // throws on invalid UTF-8 in names or metadata
  } catch (const std::exception& e) {
    return Status::Error(std::string("cannot encode header: ") + e.what(), path);
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kSafetensorsMaxHeader) return Status::Error("header exceeds the 100 MB limit", path);

  QF_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(path));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  QF_RETURN_IF_ERROR(out.Write(len, 8));
  QF_RETURN_IF_ERROR(out.Write(text.data(), text.size()));
  for (const auto& t : tensors) QF_RETURN_IF_ERROR(out.Write(t.data));
  return out.Commit();
}

}  // namespace qforge

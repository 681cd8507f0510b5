// safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
// optional "__metadata__" (string→string), then the data area. Sharded checkpoints are listed by
// model.safetensors.index.json ({"weight_map": {tensor: file}}).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/dtype.h"
#include "qforge/core/mapped_file.h"
#include "qforge/core/status.h"

namespace qforge {

constexpr uint64_t kSafetensorsMaxHeader = 100ull * 1000 * 1000;  // reject headers over 100 MB

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;      // outermost first (PyTorch order)
  std::span<const uint8_t> data;   // inside the mapping, bounds checked
  std::string file;                // the shard it came from
};

struct SafetensorsFile {
  std::shared_ptr<MappedFile> file;
  std::map<std::string, std::string> metadata;  // __metadata__
  std::vector<SafetensorsTensor> tensors;       // in data-offset order
};

StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path);
StatusOr<SafetensorsFile> ParseSafetensors(std::span<const uint8_t> bytes, const std::string& name);

// A whole checkpoint: a single .safetensors file, a directory with model.safetensors, or a directory with
// model.safetensors.index.json and its shards (every shard must hold exactly the tensors the index says).
struct SafetensorsCheckpoint {
  std::vector<SafetensorsFile> shards;
  std::vector<const SafetensorsTensor*> tensors;  // all tensors, sorted by name
  const SafetensorsTensor* Find(const std::string& name) const;
};
StatusOr<SafetensorsCheckpoint> ReadSafetensorsCheckpoint(const std::string& path);
// The weight_map of a model.safetensors.index.json text (tensor -> shard file), validated: a JSON object
// without duplicate keys, string entries, shard names inside the model folder, at least one tensor.
StatusOr<std::map<std::string, std::string>> ParseSafetensorsIndex(std::string_view text, const std::string& name);

// Writer: tensors written in the given order, contiguous, header padded with spaces to 8 bytes.
struct SafetensorsTensorOut {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::span<const uint8_t> data;
};
Status WriteSafetensors(const std::string& path, const std::vector<SafetensorsTensorOut>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace qforge
